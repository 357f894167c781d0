import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEnvRepo } from "../src/index.js";
import type { ChangeOutcome, ChangeRequest, GitChange } from "../src/index.js";
import { createEnvRemote, git, paymentsFile, rollout } from "./fixtures.js";
import type { EnvRemote } from "./fixtures.js";

let env: EnvRemote;

const request = (
  proposalId: string,
  change: GitChange,
  extra: Partial<ChangeRequest> = {},
): ChangeRequest => ({
  proposalId,
  incidentId: "INC-7",
  kind: change.action === "git-revert" ? "rollback-rollout" : "promote-canary",
  requestedAt: "2026-11-24T09:30:00.000Z",
  change,
  dryRun: false,
  ...extra,
});
const revert = (path: string): GitChange => ({ action: "git-revert", path });

/** The reason of a needs-triage outcome; fails the test on anything else. */
function triageReason(outcome: ChangeOutcome): string {
  if (outcome.status !== "needs-triage")
    throw new Error(`expected needs-triage, got ${outcome.status}`);
  return outcome.reason;
}

beforeAll(async () => {
  env = await createEnvRemote();
});
afterAll(async () => {
  await env.cleanup();
});

describe("revert of one service's path", () => {
  it("reverts only the service's part of a commit that also changed another service", async () => {
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("a") });
    const outcome = await repo.apply(request("PRP-1", revert("envs/prod/checkout")));
    expect(outcome).toMatchObject({ status: "pushed", branch: "safedeploy/PRP-1" });
    if (outcome.status === "needs-triage") throw new Error(outcome.reason);
    expect((await env.refs())["refs/heads/safedeploy/PRP-1"]).toBe(outcome.commit);

    await git(env.seed, ["fetch", "--quiet", "origin"]);
    const names = await git(env.seed, [
      "diff",
      "--name-only",
      "origin/main",
      "origin/safedeploy/PRP-1",
    ]);
    expect(names).toBe("envs/prod/checkout/rollout.yaml");
    const diff = await git(env.seed, ["diff", "origin/main", "origin/safedeploy/PRP-1"]);
    expect(diff).toContain('-          image: "registry.example.com/shop/checkout:v1.6.0"');
    expect(diff).toContain('+          image: "registry.example.com/shop/checkout:v1.5.0"');
    expect(outcome.diff).toBe(`${diff}\n`);
    expect(
      await git(env.seed, ["show", "origin/safedeploy/PRP-1:envs/prod/payments/rollout.yaml"]),
    ).toBe(paymentsFile("v2.1.0").trimEnd());
    expect(outcome.baseCommit).toBe(env.commits.docs);
    expect(outcome.diffStat).toContain("1 file changed");

    const message = await git(env.seed, ["log", "-1", "--format=%B", outcome.commit]);
    expect(message.split("\n")[0]).toBe(
      `Revert envs/prod/checkout to before ${env.commits.release!.slice(0, 12)}`,
    );
    expect(message).toContain(env.commits.release);
    expect(message).toMatch(/\n\nSafeDeploy-Proposal: PRP-1\nSafeDeploy-Incident: INC-7$/);
    expect(
      await git(env.seed, ["log", "-1", "--format=%an <%ae> %aI | %cn <%ce> %cI", outcome.commit]),
    ).toBe(
      "SafeDeploy <safedeploy@localhost> 2026-11-24T09:30:00+00:00 | SafeDeploy <safedeploy@localhost> 2026-11-24T09:30:00+00:00",
    );
  });

  it("a second run for the same proposal pushes nothing and reports the same branch and sha", async () => {
    const before = await env.refs();
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("b") });
    const again = await repo.apply(request("PRP-1", revert("envs/prod/checkout")));
    expect(again).toMatchObject({
      status: "already-pushed",
      branch: "safedeploy/PRP-1",
      commit: before["refs/heads/safedeploy/PRP-1"],
    });
    if (again.status === "already-pushed") expect(again.diff).toContain("checkout:v1.5.0");
    expect(await env.refs()).toEqual(before);
  });

  it("two replicas racing on one proposal end with one branch and agree on its sha", async () => {
    const [a, b] = await Promise.all([
      openEnvRepo({ remote: env.remote, workDir: env.workDir("race-a") }),
      openEnvRepo({ remote: env.remote, workDir: env.workDir("race-b") }),
    ]);
    const results = await Promise.all([
      a.apply(request("PRP-RACE", revert("envs/prod/checkout"), { incidentId: null })),
      b.apply(request("PRP-RACE", revert("envs/prod/checkout"), { incidentId: null })),
    ]);
    const refs = await env.refs();
    const sha = refs["refs/heads/safedeploy/PRP-RACE"];
    expect(sha).toBeDefined();
    for (const result of results) expect(result).toMatchObject({ commit: sha });
    expect(results.map((r) => r.status).sort()).toEqual(
      expect.arrayContaining([expect.stringMatching(/pushed/)]),
    );
    const message = await git(env.remote, ["log", "-1", "--format=%B", sha!]);
    expect(message).toContain("SafeDeploy-Proposal: PRP-RACE");
    expect(message).not.toContain("SafeDeploy-Incident");
  });

  it("a dry run returns the exact diff and the sha it would push, and pushes nothing", async () => {
    const before = await env.refs();
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("dry") });
    const dry = await repo.apply(
      request("PRP-DRY", revert("envs/prod/checkout"), { dryRun: true }),
    );
    expect(dry).toMatchObject({ status: "dry-run", branch: "safedeploy/PRP-DRY" });
    if (dry.status === "needs-triage") throw new Error(dry.reason);
    expect(dry.diff).toContain("diff --git a/envs/prod/checkout/rollout.yaml");
    expect(dry.diff).not.toContain("payments");
    expect(await env.refs()).toEqual(before);
    // The real run later produces the very commit the dry run showed.
    const real = await repo.apply(request("PRP-DRY", revert("envs/prod/checkout")));
    expect(real).toMatchObject({ status: "pushed", commit: dry.commit, diff: dry.diff });
  });

  it("marks ambiguity needs-triage and pushes nothing", async () => {
    await env.commit(
      "legacy service",
      { "envs/prod/legacy/rollout.yaml": rollout("legacy", "v1") },
      "2026-11-05T10:00:00Z",
    );
    await env.commit(
      "retire legacy",
      { "envs/prod/legacy/rollout.yaml": null },
      "2026-11-06T10:00:00Z",
    );
    // A merge whose result differs from both parents under envs/prod/cart.
    await env.commit(
      "cart v1",
      { "envs/prod/cart/rollout.yaml": rollout("cart", "v1") },
      "2026-11-07T10:00:00Z",
    );
    await git(env.seed, ["checkout", "--quiet", "-b", "side"]);
    await env.commit(
      "cart pause",
      { "envs/prod/cart/notes.txt": "side\n" },
      "2026-11-08T10:00:00Z",
    );
    await git(env.seed, ["checkout", "--quiet", "main"]);
    await env.commit(
      "cart v2",
      { "envs/prod/cart/rollout.yaml": rollout("cart", "v2") },
      "2026-11-09T10:00:00Z",
    );
    await git(
      env.seed,
      ["merge", "--quiet", "--no-ff", "-m", "merge side", "side"],
      "2026-11-10T10:00:00Z",
    );
    await git(env.seed, ["push", "--quiet", "origin", "main"]);

    const before = await env.refs();
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("triage") });
    const cases: [string, RegExp][] = [
      ["envs/prod/unknown", /no commit on main changed envs\/prod\/unknown/],
      ["envs/prod/legacy", /envs\/prod\/legacy does not exist on main/],
      ["envs/prod/cart", /is a merge/],
    ];
    for (const [path, reason] of cases) {
      const outcome = await repo.apply(request(`PRP-T-${path.split("/").at(-1)!}`, revert(path)));
      expect(triageReason(outcome)).toMatch(reason);
    }
    expect(await env.refs()).toEqual(before);
  });

  it("a safedeploy branch someone else made (no trailer for this proposal) needs triage, untouched", async () => {
    await git(env.seed, ["push", "--quiet", "origin", "main:refs/heads/safedeploy/PRP-FOREIGN"]);
    const before = await env.refs();
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("foreign") });
    const outcome = await repo.apply(request("PRP-FOREIGN", revert("envs/prod/checkout")));
    expect(triageReason(outcome)).toMatch(/does not carry SafeDeploy-Proposal: PRP-FOREIGN/);
    expect(await env.refs()).toEqual(before);
  });

  it("refuses paths outside the repository", async () => {
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("paths") });
    await expect(repo.apply(request("PRP-P", revert("../etc")))).rejects.toThrow(
      /refusing the repository path/,
    );
    await expect(repo.apply(request("PRP-P", revert("/etc")))).rejects.toMatchObject({
      retryable: false,
    });
  });
});

describe("canary weight", () => {
  it("changes the first setWeight of the Rollout and nothing else, byte for byte", async () => {
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("canary") });
    const outcome = await repo.apply(
      request("PRP-C1", {
        action: "set-canary-weight",
        path: "envs/prod/payments",
        from: 10,
        to: 25,
      }),
    );
    if (outcome.status === "needs-triage") throw new Error(outcome.reason);
    expect(outcome.status).toBe("pushed");
    const after = await git(env.remote, [
      "show",
      `${outcome.commit}:envs/prod/payments/rollout.yaml`,
    ]);
    expect(`${after}\n`).toBe(paymentsFile("v2.1.0", 25));
    expect(`${after}\n`).toBe(
      paymentsFile("v2.1.0").replace("- setWeight: 10 ", "- setWeight: 25 "),
    );
    expect(outcome.diff.split("\n").filter((l) => /^[+-][^+-]/.test(l))).toEqual([
      "-        - setWeight: 10    # first step",
      "+        - setWeight: 25    # first step",
    ]);
    expect(outcome.subject).toBe("Set the canary weight of payments to 25");
  });

  it("a block-promotion pauses the Rollout with one added line", async () => {
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("pause") });
    const outcome = await repo.apply(
      request("PRP-P1", { action: "pause-rollout", path: "envs/prod/payments" }),
    );
    if (outcome.status === "needs-triage") throw new Error(outcome.reason);
    expect(outcome.status).toBe("pushed");
    expect(outcome.diff.split("\n").filter((l) => /^[+-][^+-]/.test(l))).toEqual([
      "+  paused: true",
    ]);
    expect(outcome.subject).toBe("Pause Rollout payments: promotion is blocked");
  });

  it("a drifted weight, or no Rollout, needs triage", async () => {
    await env.commit(
      "config only",
      { "envs/prod/search/config.yaml": "kind: ConfigMap\napiVersion: v1\n" },
      "2026-11-11T10:00:00Z",
    );
    const before = await env.refs();
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("canary-triage") });
    expect(
      triageReason(
        await repo.apply(
          request("PRP-C2", {
            action: "set-canary-weight",
            path: "envs/prod/checkout",
            from: 20,
            to: 50,
          }),
        ),
      ),
    ).toMatch(/setWeight is 10, not 20 \(the manifest drifted\)/);
    expect(
      triageReason(
        await repo.apply(
          request("PRP-C3", {
            action: "set-canary-weight",
            path: "envs/prod/search",
            from: 10,
            to: 50,
          }),
        ),
      ),
    ).toMatch(/no Argo Rollouts Rollout/);
    expect(await env.refs()).toEqual(before);
  });
});
