import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { AnyEnvelope, createEnvelope, messageId, qualifiedName } from "@safedeploy/schema";
import type { Envelope, ProposalPlan } from "@safedeploy/schema";
import { createTestBus, createTestEnvRepo, git, testServiceEnv } from "@safedeploy/testing";
import type { TestBus, TestEnvRepo } from "@safedeploy/testing";
import { createGitActuatorService } from "../src/service.js";

const manifest = (service: string, image: string) =>
  `# ${service}\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: ${service}\nspec:\n  strategy:\n    canary:\n      steps:\n        - setWeight: 10 # first\n        - pause: {}\n  template:\n    spec:\n      containers:\n        - name: ${service}\n          image: shop/${service}:${image}\n`;

let repo: TestEnvRepo;
let root: string;
let remote: string;
let harness: TestBus;
/** The commit that released checkout v2: what its rollback reverts. */
let release: string;
const replicas: ServiceHandle[] = [];

/** The remote's `safedeploy/` branches with their head commits. */
const remoteBranches = () => repo.branches();

function requested(
  proposalId: string,
  kind: "rollback-rollout" | "promote-canary" | "block-promotion" | "promote-release",
  plan: ProposalPlan,
  service = "checkout",
): Envelope<"governance.action-requested"> {
  const at = "2026-11-24T10:00:00.000Z";
  return createEnvelope(
    {
      type: "governance.action-requested",
      id: messageId("governance.action-requested", proposalId),
      service,
      data: { proposalId, kind, incidentId: "INC-9", requestedAt: at, plan },
    },
    { source: "proposal", time: at },
  );
}

/** GOVERNANCE as stored, but the forged messages a test put there on purpose. */
async function readGovernance(): Promise<Envelope[]> {
  const name = qualifiedName(harness.bus.ns, "GOVERNANCE");
  const info = await harness.bus.jsm.streams.info(name);
  const found: Envelope[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq++
  ) {
    const parsed = AnyEnvelope.safeParse(
      (await harness.bus.jsm.streams.getMessage(name, { seq }))?.json(),
    );
    if (parsed.success) found.push(parsed.data);
  }
  return found;
}

async function governance(type: string, proposalId: string, count = 1): Promise<Envelope[]> {
  for (let i = 0; i < 400; i++) {
    const found = (await readGovernance()).filter(
      (e) => e.type === type && (e.data as { proposalId?: string }).proposalId === proposalId,
    );
    if (found.length >= count) return found;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no ${type} for ${proposalId}`);
}

/** Waits until the git-actuator consumer has nothing pending or unacknowledged. */
async function settled(): Promise<void> {
  const stream = qualifiedName(harness.bus.ns, "GOVERNANCE");
  for (let i = 0; i < 400; i++) {
    const info = await harness.bus.jsm.consumers.info(
      stream,
      qualifiedName(harness.bus.ns, "git-actuator"),
    );
    if (info.num_pending === 0 && info.num_ack_pending === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("the git-actuator consumer did not settle");
}

async function start(overrides: Record<string, string> = {}): Promise<ServiceHandle> {
  const env = testServiceEnv(harness, {
    SAFEDEPLOY_ENV_REPO: remote,
    SAFEDEPLOY_HOME: join(root, "home"),
    ...overrides,
  });
  const handle = await startService(createGitActuatorService({ env }), { env });
  replicas.push(handle);
  return handle;
}

beforeAll(async () => {
  repo = await createTestEnvRepo("actuator");
  ({ root, remote } = repo);
  await repo.commit("initial", {
    "envs/prod/checkout/rollout.yaml": manifest("checkout", "v1"),
    "envs/prod/payments/rollout.yaml": manifest("payments", "v1"),
  });
  release = await repo.commit("release both", {
    "envs/prod/checkout/rollout.yaml": manifest("checkout", "v2"),
    "envs/prod/payments/rollout.yaml": manifest("payments", "v2"),
  });
  harness = await createTestBus();
  await provision(harness.bus);
  await start();
  await start(); // two replicas share the durable consumer
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.shutdown("test")));
  await harness.cleanup();
  await repo.dispose();
});

describe("git actuator", () => {
  it("turns an approved rollback into one branch and one action-completed, however often it is delivered", async () => {
    const action = requested("PRP-A", "rollback-rollout", {
      action: "git-revert",
      path: "envs/prod/checkout",
    });
    await publishEvent(harness.bus, action);
    const [done] = await governance("governance.action-completed", "PRP-A");
    const branches = await remoteBranches();
    expect(branches).toEqual({ "safedeploy/PRP-A": expect.any(String) as string });
    expect(done?.data).toMatchObject({
      proposalId: "PRP-A",
      incidentId: "INC-9",
      kind: "rollback-rollout",
      branch: "safedeploy/PRP-A",
      commit: branches["safedeploy/PRP-A"],
      prUrl: null,
      dryRun: false,
    });
    expect((done?.data as { diff: string }).diff).toContain("+          image: shop/checkout:v1");
    expect(done?.data).toMatchObject({
      target: {
        commit: release,
        author: "Dev <dev@example.com>",
        subject: "release both",
        why: "newest commit on the first-parent history of main that changed envs/prod/checkout",
      },
    });
    expect((done?.data as { diff: string }).diff).not.toContain("payments");
    expect(done?.causationId).toBe(action.id);

    // The same approval again (deduplicated by the stream) and as a redelivery with another id.
    await publishEvent(harness.bus, action);
    await publishEvent(harness.bus, { ...action, id: `${action.id}:redelivered` });
    await settled();
    expect(await remoteBranches()).toEqual(branches);
    expect(await governance("governance.action-completed", "PRP-A")).toHaveLength(1);
  });

  it("an ambiguous revert fails with needs-triage and pushes nothing", async () => {
    await publishEvent(
      harness.bus,
      requested(
        "PRP-B",
        "rollback-rollout",
        { action: "git-revert", path: "envs/prod/nothing" },
        "search",
      ),
    );
    const [failed] = await governance("governance.action-failed", "PRP-B");
    expect(failed?.data).toMatchObject({
      proposalId: "PRP-B",
      needsTriage: true,
      state: "needs-triage",
      reason: expect.stringContaining("no commit on main changed envs/prod/nothing") as string,
    });
    expect(failed?.data).not.toHaveProperty("harm");
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });

  it("a change already in place fails as unchanged, pushing nothing; a real conflict is not unchanged", async () => {
    await publishEvent(
      harness.bus,
      requested("TRN-1-s1-promote", "promote-release", {
        action: "patch-manifest",
        path: "envs/prod/checkout",
        patch: { metadata: { name: "checkout" } },
      }),
    );
    const [same] = await governance("governance.action-failed", "TRN-1-s1-promote");
    expect(same?.data).toMatchObject({
      needsTriage: true,
      unchanged: true,
      reason: expect.stringContaining("already is as the patch says") as string,
    });
    const [ambiguous] = await governance("governance.action-failed", "PRP-B");
    expect(ambiguous?.data).not.toHaveProperty("unchanged");
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });

  it("an invalid plan is dead-lettered naming the field, a plan of another kind needs triage; block-promotion completes without a branch", async () => {
    // Forged past the publisher's own check: the consumer refuses it, nothing is acted on.
    const forged = requested("PRP-C", "promote-canary", { action: "record-only", reasons: [] });
    const plan = { action: "set-canary-weight", path: "../x" };
    await harness.bus.js.publish(
      `${harness.bus.ns.root}.governance.action-requested.checkout`,
      JSON.stringify({ ...forged, data: { ...forged.data, plan } }),
    );
    const deadLetters = qualifiedName(harness.bus.ns, "DEADLETTER");
    let letter: string | undefined;
    for (let i = 0; i < 200 && letter === undefined; i++) {
      const info = await harness.bus.jsm.streams.info(deadLetters);
      for (
        let seq = info.state.first_seq;
        info.state.messages > 0 && seq <= info.state.last_seq;
        seq++
      ) {
        const text = (await harness.bus.jsm.streams.getMessage(deadLetters, { seq }))?.string();
        if (text?.includes("PRP-C") === true) letter = text;
      }
      if (letter === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(letter).toMatch(/data\.plan/);
    // A valid plan that its kind may not carry: refused by the actuator itself.
    await publishEvent(
      harness.bus,
      requested("PRP-C2", "promote-canary", { action: "git-revert", path: "envs/prod/checkout" }),
    );
    const [wrongKind] = await governance("governance.action-failed", "PRP-C2");
    expect(wrongKind?.data).toMatchObject({ needsTriage: true, state: "needs-triage" });
    expect((wrongKind?.data as { reason: string }).reason).toMatch(
      /invalid promote-canary plan: action: git-revert is not a plan of promote-canary/,
    );
    await publishEvent(
      harness.bus,
      requested("PRP-D", "block-promotion", { action: "record-only", reasons: [] }),
    );
    const [blocked] = await governance("governance.action-completed", "PRP-D");
    expect(blocked?.data).toMatchObject({ branch: "", commit: "", diff: "", prUrl: null });
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });

  it("never reverts SafeDeploy's own merged rollback: its preview and its action need triage, nothing pushed", async () => {
    // PRP-A's rollback is merged into main; the error rate comes back without a new deploy.
    const merger = join(root, "merger");
    await git(root, ["clone", "--quiet", remote, merger]);
    const title = "Merge pull request #1 from acme/safedeploy/PRP-A";
    await git(merger, ["merge", "--quiet", "--no-ff", "-m", title, "origin/safedeploy/PRP-A"]);
    await git(merger, ["push", "--quiet", "origin", "main"]);
    const merge = await git(merger, ["rev-parse", "HEAD"]);
    const rollback = await git(merger, ["rev-parse", "origin/safedeploy/PRP-A"]);

    const action = requested("PRP-OWN", "rollback-rollout", {
      action: "git-revert",
      path: "envs/prod/checkout",
    });
    const preview = createEnvelope(
      {
        type: "governance.preview-requested",
        id: messageId("governance.preview-requested", "PRP-OWN"),
        service: action.service,
        data: action.data,
      },
      { source: "proposal", time: action.time },
    );
    const refusal = {
      proposalId: "PRP-OWN",
      needsTriage: true,
      state: "needs-triage",
      harm: "own-rollback",
      reason: expect.stringContaining(
        `brings in SafeDeploy's own rollback ${rollback.slice(0, 12)}`,
      ) as string,
      target: {
        commit: merge,
        author: "Dev <dev@example.com>",
        committedAt: expect.any(String) as string,
        subject: title,
        why: expect.stringContaining(`the merge of ${rollback.slice(0, 12)} into main`) as string,
      },
    };
    await publishEvent(harness.bus, preview);
    const [previewed] = await governance("governance.action-failed", "PRP-OWN");
    expect(previewed?.data).toMatchObject({ ...refusal, dryRun: true });

    await publishEvent(harness.bus, action);
    const failures = await governance("governance.action-failed", "PRP-OWN", 2);
    const failed = failures.find((e) => (e.data as { dryRun?: boolean }).dryRun !== true);
    expect(failed?.data).toMatchObject(refusal);
    expect(failed?.data).not.toHaveProperty("dryRun");
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });

  it("with SAFEDEPLOY_DRY_RUN=1 reports the diff and pushes nothing", async () => {
    // A dry-run replica alone on its own namespace's consumer would be cleaner; here the normal
    // replicas stop first so the dry one gets the message.
    await Promise.all(replicas.splice(0).map((r) => r.shutdown("switch to dry run")));
    await start({ SAFEDEPLOY_DRY_RUN: "1" });
    await publishEvent(
      harness.bus,
      requested(
        "PRP-E",
        "promote-canary",
        { action: "set-canary-weight", path: "envs/prod/payments", from: 10, to: 50 },
        "payments",
      ),
    );
    const [dry] = await governance("governance.action-completed", "PRP-E");
    expect(dry?.data).toMatchObject({ dryRun: true, branch: "safedeploy/PRP-E", prUrl: null });
    expect((dry?.data as { diff: string }).diff).toContain("+        - setWeight: 50 # first");
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });
});
