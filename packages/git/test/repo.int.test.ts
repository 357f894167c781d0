import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openEnvRepo } from "../src/index.js";
import type {
  ChangeCommitted,
  ChangeOutcome,
  ChangeRequest,
  GitChange,
  NeedsTriage,
} from "../src/index.js";
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

/** A needs-triage outcome; fails the test on anything else. */
function needsTriage(outcome: ChangeOutcome): NeedsTriage {
  if (outcome.status !== "needs-triage")
    throw new Error(`expected needs-triage, got ${outcome.status}`);
  return outcome;
}

/** A committed outcome (pushed, already pushed or dry run); fails the test on a triage. */
function committed(outcome: ChangeOutcome): ChangeCommitted {
  if (outcome.status === "needs-triage") throw new Error(`needs triage: ${outcome.reason}`);
  return outcome;
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
    expect(message).toContain(
      `Reverts the part of ${env.commits.release} ("Release: checkout v1.6.0, payments v2.1.0", by Dev <dev@example.com>, 2026-11-03T10:00:00+00:00) under envs/prod/checkout.`,
    );
    // SafeDeploy-Action names the kind: how a later rollback recognises this one as SafeDeploy's.
    expect(message).toMatch(
      /\n\nSafeDeploy-Proposal: PRP-1\nSafeDeploy-Incident: INC-7\nSafeDeploy-Action: rollback-rollout$/,
    );
    expect(outcome.target).toEqual({
      commit: env.commits.release,
      author: "Dev <dev@example.com>",
      committedAt: "2026-11-03T10:00:00+00:00",
      subject: "Release: checkout v1.6.0, payments v2.1.0",
      why: "newest commit on the first-parent history of main that changed envs/prod/checkout",
    });
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
    if (again.status === "already-pushed") {
      expect(again.diff).toContain("checkout:v1.5.0");
      // The target is chosen again on the base the branch was made on: the same commit.
      expect(again.target?.commit).toBe(env.commits.release);
    }
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
    ];
    for (const [path, reason] of cases) {
      const outcome = await repo.apply(request(`PRP-T-${path.split("/").at(-1)!}`, revert(path)));
      expect(triageReason(outcome)).toMatch(reason);
    }
    expect(await env.refs()).toEqual(before);

    // The merge is no longer ambiguous: it is the newest commit on main's first-parent history
    // that changed envs/prod/cart (a branch merged into main), and its revert is taken relative
    // to its first parent, what main was before the merge (DESIGN.md invariant 11).
    const merge = await git(env.seed, ["rev-parse", "main"]);
    const cart = await repo.apply(request("PRP-T-cart", revert("envs/prod/cart")));
    expect(cart).toMatchObject({ status: "pushed", target: { commit: merge } });
    expect(await git(env.remote, ["diff", "--name-status", "main", "safedeploy/PRP-T-cart"])).toBe(
      "D\tenvs/prod/cart/notes.txt",
    );
  });

  it("a deleted path needs triage as path-deleted, naming the commit that deleted it", async () => {
    const repo = await openEnvRepo({ remote: env.remote, workDir: env.workDir("deleted") });
    const outcome = await repo.apply(request("PRP-T-legacy", revert("envs/prod/legacy")));
    const retired = await git(env.seed, ["log", "-1", "--format=%H", "--", "envs/prod/legacy"]);
    expect(outcome).toMatchObject({
      status: "needs-triage",
      harm: "path-deleted",
      target: { commit: retired, subject: "retire legacy", author: "Dev <dev@example.com>" },
    });
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

describe("a rollback never re-applies harm (DESIGN.md invariant 11)", () => {
  const CHECKOUT = "envs/prod/checkout";
  let fresh: EnvRemote;

  beforeEach(async () => {
    fresh = await createEnvRemote();
  });
  afterEach(async () => {
    await fresh.cleanup();
  });

  const open = (name: string) =>
    openEnvRepo({ remote: fresh.remote, workDir: fresh.workDir(name) });
  const short = (sha: string) => sha.slice(0, 12);
  const deployCheckout = (image: string, date: string) =>
    fresh.commit(
      `checkout ${image}`,
      { "envs/prod/checkout/rollout.yaml": rollout("checkout", image) },
      date,
    );

  /** Merges a pushed branch into main as a forge would (a merge commit or a fast-forward). */
  async function mergeIntoMain(
    branch: string,
    how: "--no-ff" | "--ff-only",
    date: string,
  ): Promise<string> {
    await git(fresh.seed, ["fetch", "--quiet", "origin"]);
    await git(
      fresh.seed,
      [
        "merge",
        "--quiet",
        how,
        "-m",
        `Merge pull request #7 from acme/${branch}`,
        `origin/${branch}`,
      ],
      date,
    );
    await git(fresh.seed, ["push", "--quiet", "origin", "main"]);
    return git(fresh.seed, ["rev-parse", "HEAD"]);
  }

  /** SafeDeploy's rollback of a bad checkout deploy, pushed for proposal PRP-A (not merged). */
  async function rollbackOfBadDeploy() {
    const bad = await deployCheckout("v1.7.0", "2026-11-20T10:00:00Z");
    const repo = await open("safedeploy");
    const rollback = committed(await repo.apply(request("PRP-A", revert(CHECKOUT))));
    expect(rollback.target?.commit).toBe(bad);
    return { bad, repo, rollback };
  }

  it("refuses to revert SafeDeploy's own rollback merged with a merge commit, pushing nothing", async () => {
    const { bad, repo, rollback } = await rollbackOfBadDeploy();
    const merge = await mergeIntoMain("safedeploy/PRP-A", "--no-ff", "2026-11-24T10:00:00Z");
    const before = await fresh.refs();

    // The error rate came back without a new deploy: the next rollback must not undo the first.
    const refused = needsTriage(await repo.apply(request("PRP-B", revert(CHECKOUT))));
    expect(refused).toMatchObject({ branch: "safedeploy/PRP-B", harm: "own-rollback" });
    expect(refused.reason).toContain(
      `is the merge ${short(merge)}, which brings in SafeDeploy's own rollback ${short(rollback.commit)}`,
    );
    expect(refused.target).toEqual({
      commit: merge,
      author: "Dev <dev@example.com>",
      committedAt: "2026-11-24T10:00:00+00:00",
      subject: "Merge pull request #7 from acme/safedeploy/PRP-A",
      why: `newest commit on the first-parent history of main that changed ${CHECKOUT}: the merge of ${short(rollback.commit)} into main, reverted relative to its first parent ${short(bad)}`,
    });
    // The preview finds the same harm.
    const preview = await repo.apply(request("PRP-B", revert(CHECKOUT), { dryRun: true }));
    expect(preview).toEqual(refused);
    expect(await fresh.refs()).toEqual(before);
  });

  it("refuses SafeDeploy's own rollback fast-forwarded into main", async () => {
    const { bad, repo, rollback } = await rollbackOfBadDeploy();
    expect(await mergeIntoMain("safedeploy/PRP-A", "--ff-only", "2026-11-24T10:00:00Z")).toBe(
      rollback.commit,
    );
    const before = await fresh.refs();
    const refused = needsTriage(await repo.apply(request("PRP-B", revert(CHECKOUT))));
    expect(refused.harm).toBe("own-rollback");
    expect(refused.reason).toContain(`is SafeDeploy's own rollback ${short(rollback.commit)}`);
    expect(refused.target).toEqual({
      commit: rollback.commit,
      author: "SafeDeploy <safedeploy@localhost>",
      committedAt: "2026-11-24T09:30:00+00:00",
      subject: `Revert ${CHECKOUT} to before ${short(bad)}`,
      why: `newest commit on the first-parent history of main that changed ${CHECKOUT}`,
    });
    expect(await fresh.refs()).toEqual(before);
  });

  it("recognises a squash merge of SafeDeploy's rollback and one made before SafeDeploy-Action existed", async () => {
    const { repo, rollback } = await rollbackOfBadDeploy();
    await git(fresh.seed, ["fetch", "--quiet", "origin"]);
    await git(fresh.seed, ["merge", "--quiet", "--squash", "origin/safedeploy/PRP-A"]);
    // GitHub's squash body: each commit's message as a bullet, the trailers no longer last.
    const squashBody = [
      `* ${rollback.subject}`,
      rollback.body,
      "SafeDeploy-Proposal: PRP-A\nSafeDeploy-Incident: INC-7\nSafeDeploy-Action: rollback-rollout",
      "* Tidy the description",
      "Co-authored-by: Dev <dev@example.com>",
    ].join("\n\n");
    await git(
      fresh.seed,
      ["commit", "--quiet", "-m", "Roll back checkout (#8)", "-m", squashBody],
      "2026-11-24T10:00:00Z",
    );
    await git(fresh.seed, ["push", "--quiet", "origin", "main"]);
    const squash = await git(fresh.seed, ["rev-parse", "HEAD"]);
    expect(needsTriage(await repo.apply(request("PRP-B", revert(CHECKOUT))))).toMatchObject({
      harm: "own-rollback",
      target: { commit: squash, subject: "Roll back checkout (#8)" },
    });

    // An older SafeDeploy rollback: a `Revert …` subject and SafeDeploy-Proposal, no action.
    const legacy = await fresh.commit(
      `Revert ${CHECKOUT} to before 0123456789ab\n\nReverts the part of 0123456789ab under ${CHECKOUT}.\n\nSafeDeploy-Proposal: PRP-OLD\nSafeDeploy-Incident: INC-1`,
      { "envs/prod/checkout/rollout.yaml": rollout("checkout", "v1.5.0") },
      "2026-11-25T10:00:00Z",
    );
    expect(needsTriage(await repo.apply(request("PRP-C", revert(CHECKOUT))))).toMatchObject({
      harm: "own-rollback",
      target: { commit: legacy },
    });
    expect(Object.keys(await fresh.refs()).sort()).toEqual([
      "refs/heads/main",
      "refs/heads/safedeploy/PRP-A",
    ]);
  });

  it("a branch an earlier version pushed that would re-apply harm needs triage, untouched", async () => {
    await rollbackOfBadDeploy();
    await mergeIntoMain("safedeploy/PRP-A", "--no-ff", "2026-11-24T10:00:00Z");
    // What an earlier version would have pushed: the revert of the merged rollback.
    await git(fresh.seed, ["checkout", "--quiet", "-b", "old", "main"]);
    await writeFile(
      join(fresh.seed, "envs/prod/checkout/rollout.yaml"),
      rollout("checkout", "v1.7.0"),
    );
    await git(
      fresh.seed,
      ["commit", "--quiet", "-am", `Revert ${CHECKOUT}\n\nSafeDeploy-Proposal: PRP-OLD`],
      "2026-11-25T10:00:00Z",
    );
    await git(fresh.seed, ["push", "--quiet", "origin", "old:refs/heads/safedeploy/PRP-OLD"]);
    await git(fresh.seed, ["checkout", "--quiet", "main"]);
    const before = await fresh.refs();
    const outcome = needsTriage(
      await (await open("later")).apply(request("PRP-OLD", revert(CHECKOUT))),
    );
    expect(outcome.harm).toBe("own-rollback");
    expect(outcome.reason).toMatch(
      /^safedeploy\/PRP-OLD exists on the remote, but the last change/,
    );
    expect(await fresh.refs()).toEqual(before);
  });

  it("SafeDeploy's other commits carry SafeDeploy-Action too, and stay revertible", async () => {
    const repo = await open("canary");
    const canary = committed(
      await repo.apply(
        request("PRP-W", {
          action: "set-canary-weight",
          path: "envs/prod/payments",
          from: 10,
          to: 25,
        }),
      ),
    );
    expect(
      await git(fresh.remote, ["log", "-1", "--format=%(trailers:only,unfold)", canary.commit]),
    ).toBe(
      "SafeDeploy-Proposal: PRP-W\nSafeDeploy-Incident: INC-7\nSafeDeploy-Action: promote-canary",
    );
    await mergeIntoMain("safedeploy/PRP-W", "--ff-only", "2026-11-24T10:00:00Z");
    const outcome = await repo.apply(request("PRP-X", revert("envs/prod/payments")));
    expect(outcome).toMatchObject({ status: "pushed", target: { commit: canary.commit } });
  });

  it("refuses a commit that created the service's path (directly or by a merge): path-created", async () => {
    const created = await fresh.commit(
      "add search",
      { "envs/prod/search/rollout.yaml": rollout("search", "v1") },
      "2026-11-20T10:00:00Z",
    );
    await git(fresh.seed, ["checkout", "--quiet", "-b", "feature"]);
    await fresh.commit(
      "add cart",
      { "envs/prod/cart/rollout.yaml": rollout("cart", "v1") },
      "2026-11-21T10:00:00Z",
    );
    await git(fresh.seed, ["push", "--quiet", "origin", "feature"]);
    await git(fresh.seed, ["checkout", "--quiet", "main"]);
    const merge = await mergeIntoMain("feature", "--no-ff", "2026-11-22T10:00:00Z");
    const before = await fresh.refs();
    const repo = await open("created");
    const search = needsTriage(await repo.apply(request("PRP-S", revert("envs/prod/search"))));
    expect(search).toMatchObject({
      harm: "path-created",
      target: { commit: created, subject: "add search" },
    });
    expect(search.reason).toContain(
      `(${short(created)}) created it: reverting it would delete the service`,
    );
    expect(needsTriage(await repo.apply(request("PRP-K", revert("envs/prod/cart"))))).toMatchObject(
      { harm: "path-created", target: { commit: merge } },
    );
    expect(await fresh.refs()).toEqual(before);
  });

  it("refuses a commit committed after the burn began, and reverts it when the burn began later", async () => {
    // Authored before the burn, but it landed on main (committer date) after the burn began.
    await writeFile(
      join(fresh.seed, "envs/prod/checkout/rollout.yaml"),
      rollout("checkout", "v1.7.0"),
    );
    await git(
      fresh.seed,
      ["commit", "--quiet", "-am", "checkout v1.7.0", "--date", "2026-11-20T08:00:00Z"],
      "2026-11-20T10:00:00Z",
    );
    await git(fresh.seed, ["push", "--quiet", "origin", "main"]);
    const late = await git(fresh.seed, ["rev-parse", "HEAD"]);
    const burning = (burnBegan: string): GitChange => ({
      action: "git-revert",
      path: CHECKOUT,
      burnBegan,
    });
    const repo = await open("burn");
    const refused = needsTriage(
      await repo.apply(request("PRP-EARLY", burning("2026-11-20T09:00:00.000Z"))),
    );
    expect(refused).toMatchObject({
      harm: "newer-than-burn",
      target: { commit: late, committedAt: "2026-11-20T10:00:00+00:00" },
    });
    expect(refused.reason).toContain(
      "was committed at 2026-11-20T10:00:00+00:00, after the burn began at 2026-11-20T09:00:00.000Z: it cannot be the cause",
    );
    expect(Object.keys(await fresh.refs())).toEqual(["refs/heads/main"]);

    // The same repo, the burn beginning after the commit (written with an offset).
    const reverted = committed(
      await repo.apply(request("PRP-LATER", burning("2026-11-20T11:30:00+01:00"))),
    );
    expect(reverted).toMatchObject({ status: "pushed", target: { commit: late } });

    await expect(repo.apply(request("PRP-BAD", burning("yesterday")))).rejects.toMatchObject({
      name: "InvalidChangeError",
      retryable: false,
    });
  });

  it("reverts what was live when the burn began, per the deploy events, when the repo alone cannot tell", async () => {
    const live = await git(fresh.seed, ["rev-parse", "HEAD"]);
    const liveChange = await git(fresh.seed, [
      "log",
      "--first-parent",
      "-1",
      "--format=%H",
      live,
      "--",
      CHECKOUT,
    ]);
    // After the burn began, a change under the path that Argo CD has not synced yet.
    await writeFile(join(fresh.seed, `${CHECKOUT}/hpa.yaml`), "kind: HorizontalPodAutoscaler\n");
    await git(fresh.seed, ["add", "."]);
    await git(fresh.seed, ["commit", "--quiet", "-m", "checkout hpa"], "2026-11-20T10:00:00Z");
    await git(fresh.seed, ["push", "--quiet", "origin", "main"]);
    const change = (liveRevision?: string): GitChange => ({
      action: "git-revert",
      path: CHECKOUT,
      burnBegan: "2026-11-20T09:00:00.000Z",
      ...(liveRevision === undefined ? {} : { liveRevision }),
    });
    const repo = await open("live");
    // The repo alone: the newest change came after the burn, so it cannot say.
    expect(needsTriage(await repo.apply(request("PRP-ALONE", change())))).toMatchObject({
      harm: "newer-than-burn",
    });
    // The deploy events say which commit served: its change under the path is reverted.
    const reverted = committed(await repo.apply(request("PRP-LIVE", change(live.slice(0, 12)))));
    expect(reverted).toMatchObject({ status: "pushed", target: { commit: liveChange } });
    // A live revision that is not on main is never a guess.
    const stranger = needsTriage(
      await repo.apply(request("PRP-STRANGER", change("0123456789abcdef0123456789abcdef01234567"))),
    );
    expect(stranger.reason).toContain("is not on main");
  });

  it("reverts a merge on the first-parent history relative to its first parent, only under the path", async () => {
    await git(fresh.seed, ["checkout", "--quiet", "-b", "release"]);
    await fresh.commit(
      "Release 2026.11: checkout v1.7.0, payments v2.2.0",
      {
        "envs/prod/checkout/rollout.yaml": rollout("checkout", "v1.7.0"),
        "envs/prod/payments/rollout.yaml": paymentsFile("v2.2.0"),
      },
      "2026-11-20T10:00:00Z",
    );
    const releaseTip = await git(fresh.seed, ["rev-parse", "HEAD"]);
    await git(fresh.seed, ["push", "--quiet", "origin", "release"]);
    await git(fresh.seed, ["checkout", "--quiet", "main"]);
    const mainTip = await fresh.commit(
      "Docs again",
      { "README.md": "# environment\n\nManaged by Argo CD, reviewed by people.\n" },
      "2026-11-21T10:00:00Z",
    );
    const merge = await mergeIntoMain("release", "--no-ff", "2026-11-22T10:00:00Z");

    const outcome = committed(
      await (await open("merge")).apply(request("PRP-M", revert(CHECKOUT))),
    );
    expect(outcome.status).toBe("pushed");
    expect(outcome.target).toEqual({
      commit: merge,
      author: "Dev <dev@example.com>",
      committedAt: "2026-11-22T10:00:00+00:00",
      subject: "Merge pull request #7 from acme/release",
      why: `newest commit on the first-parent history of main that changed ${CHECKOUT}: the merge of ${short(releaseTip)} into main, reverted relative to its first parent ${short(mainTip)}`,
    });
    const branch = "safedeploy/PRP-M";
    expect(await git(fresh.remote, ["diff", "--name-only", merge, branch])).toBe(
      "envs/prod/checkout/rollout.yaml",
    );
    expect(await git(fresh.remote, ["show", `${branch}:envs/prod/checkout/rollout.yaml`])).toBe(
      rollout("checkout", "v1.6.0").trimEnd(),
    );
    expect(await git(fresh.remote, ["show", `${branch}:envs/prod/payments/rollout.yaml`])).toBe(
      paymentsFile("v2.2.0").trimEnd(),
    );
    const message = await git(fresh.remote, ["log", "-1", "--format=%B", branch]);
    expect(message).toContain(
      `Reverts the part of ${merge} ("Merge pull request #7 from acme/release", by Dev <dev@example.com>, 2026-11-22T10:00:00+00:00) under ${CHECKOUT}.`,
    );
    expect(message).toContain(`Chosen as the ${outcome.target!.why}.`);
  });
});
