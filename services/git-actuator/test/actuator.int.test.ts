import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { AnyEnvelope, createEnvelope, messageId, qualifiedName } from "@safedeploy/schema";
import type { Envelope, ProposalPlan, ProposalState, ProposalRecord } from "@safedeploy/schema";
import {
  createTestBus,
  createTestEnvRepo,
  git,
  recordProposal as recordSharedProposal,
  testServiceEnv,
} from "@safedeploy/testing";
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

/** Records the proposal behind an action (approved by default) where the actuator checks it. */
const recordProposal = (
  action: Envelope<"governance.action-requested">,
  overrides: Partial<ProposalRecord> = {},
) => recordSharedProposal(harness.bus, action, overrides);

/** An action whose proposal was approved, published as the proposal service would. */
async function publishApproved(
  action: Envelope<"governance.action-requested">,
  overrides: Partial<ProposalRecord> = {},
): Promise<void> {
  await recordProposal(action, overrides);
  await publishEvent(harness.bus, action);
}

/** The dead letters whose text mentions `needle`, waiting until there are `count`. */
async function deadLetters(needle: string, count = 1): Promise<string[]> {
  const stream = qualifiedName(harness.bus.ns, "DEADLETTER");
  for (let i = 0; i < 200; i++) {
    const info = await harness.bus.jsm.streams.info(stream);
    const found: string[] = [];
    for (
      let seq = info.state.first_seq;
      info.state.messages > 0 && seq <= info.state.last_seq;
      seq++
    ) {
      const text = (await harness.bus.jsm.streams.getMessage(stream, { seq }))?.string();
      if (text?.includes(needle) === true) found.push(text);
    }
    if (found.length >= count) return found;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no dead letter mentions ${needle}`);
}

/** The actuator's refusals by reason, summed over the running replicas' /metrics registries. */
async function refusals(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const replica of replicas) {
    const metric = await replica.registry
      .getSingleMetric("safedeploy_actuator_refused_total")
      ?.get();
    for (const value of metric?.values ?? []) {
      const reason = String(value.labels.reason);
      counts[reason] = (counts[reason] ?? 0) + value.value;
    }
  }
  return counts;
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
  const info = await harness.bus.jsm.consumers.info(
    stream,
    qualifiedName(harness.bus.ns, "git-actuator"),
  );
  throw new Error(
    `the git-actuator consumer did not settle: ${JSON.stringify({ pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered })}`,
  );
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
    await publishApproved(action);
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
    await publishApproved(
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
    // A manifest hook runs within its step's promotion, which is what was approved.
    const hook = requested("TRN-1-s1-promote", "promote-release", {
      action: "patch-manifest",
      path: "envs/prod/checkout",
      patch: { metadata: { name: "checkout" } },
    });
    await publishApproved(hook, {
      id: "TRN-1-s1",
      plan: { action: "set-image", path: "envs/prod/checkout", image: "shop/checkout:v3" },
    });
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
    const [letter] = await deadLetters("PRP-C");
    expect(letter).toMatch(/data\.plan/);
    // A valid plan that its kind may not carry: refused by the actuator itself.
    // (as if the proposal service had recorded it so)
    await publishApproved(
      requested("PRP-C2", "promote-canary", { action: "git-revert", path: "envs/prod/checkout" }),
    );
    const [wrongKind] = await governance("governance.action-failed", "PRP-C2");
    expect(wrongKind?.data).toMatchObject({ needsTriage: true, state: "needs-triage" });
    expect((wrongKind?.data as { reason: string }).reason).toMatch(
      /invalid promote-canary plan: action: git-revert is not a plan of promote-canary/,
    );
    await publishApproved(
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

    await publishApproved(action);
    const failures = await governance("governance.action-failed", "PRP-OWN", 2);
    const failed = failures.find((e) => (e.data as { dryRun?: boolean }).dryRun !== true);
    expect(failed?.data).toMatchObject(refusal);
    expect(failed?.data).not.toHaveProperty("dryRun");
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
  });

  it("acts only for a proposal approved by enough distinct people with this very plan; else refuses, dead-letters and counts, pushing nothing", async () => {
    const before = await refusals();
    const revert = (id: string, path = "envs/prod/checkout") =>
      requested(id, "rollback-rollout", { action: "git-revert", path });
    // A copy of a pending proposal's preview, republished as an action with a new id.
    const pending = revert("PRP-PENDING");
    await recordProposal(pending, { state: "pending", approvals: [] });
    const forged = { ...pending, id: "forged-from-preview" };
    await publishEvent(harness.bus, forged);
    // No proposal at all; one approval twice by the same person where two are required; a
    // rejected one; an approved proposal asked for another path; a hook of a pending promotion.
    await publishEvent(harness.bus, revert("PRP-NONE"));
    const short = revert("PRP-SHORT");
    const ana = { by: "ana", at: short.data.requestedAt, reason: "ok" };
    await recordProposal(short, { required: 2, approvals: [ana, { ...ana, reason: "again" }] });
    await publishEvent(harness.bus, short);
    const rejected = revert("PRP-REJECTED");
    await recordProposal(rejected, { state: "rejected" as ProposalState });
    await publishEvent(harness.bus, rejected);
    const other = revert("PRP-OTHER");
    await recordProposal(other);
    await publishEvent(harness.bus, revert("PRP-OTHER", "envs/prod/payments"));
    const hook = requested("TRN-2-s1-promote", "promote-release", {
      action: "patch-manifest",
      path: "envs/prod/checkout",
      patch: { metadata: { labels: { x: "y" } } },
    });
    await recordProposal(hook, { id: "TRN-2-s1", state: "pending" });
    await publishEvent(harness.bus, hook);

    const reasons = await Promise.all(
      ["PRP-PENDING", "PRP-NONE", "PRP-SHORT", "PRP-REJECTED", "PRP-OTHER", "TRN-2-s1-promote"].map(
        async (id) => (await deadLetters(`refused: ${id}`))[0] ?? "",
      ),
    );
    expect(reasons[0]).toContain("proposal PRP-PENDING is pending, not approved");
    expect(reasons[1]).toContain("no proposal PRP-NONE to authorise it");
    expect(reasons[2]).toContain("has 1 distinct approver(s) of 2 required");
    expect(reasons[3]).toContain("proposal PRP-REJECTED is rejected, not approved");
    expect(reasons[4]).toContain("the plan asked for is not the plan of proposal PRP-OTHER");
    expect(reasons[5]).toContain("proposal TRN-2-s1 is pending, not approved");
    await settled();
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
    const after = await refusals();
    const grew = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect({
      "not-approved": grew("not-approved"),
      "no-proposal": grew("no-proposal"),
      "too-few-approvers": grew("too-few-approvers"),
      mismatch: grew("mismatch"),
    }).toEqual({ "not-approved": 3, "no-proposal": 1, "too-few-approvers": 1, mismatch: 1 });
    const outcomes = (await readGovernance()).filter(
      (e) =>
        e.type !== "governance.action-requested" &&
        /PRP-(PENDING|NONE|SHORT|REJECTED|OTHER)|TRN-2/.test(
          (e.data as { proposalId?: string }).proposalId ?? "",
        ),
    );
    expect(outcomes).toEqual([]);
  });

  it("skips an action whose proposal was executed already: no second change, no dead letter", async () => {
    const action = requested("PRP-DONE", "rollback-rollout", {
      action: "git-revert",
      path: "envs/prod/payments",
    });
    await publishApproved(action, { state: "executed" });
    await settled();
    expect(Object.keys(await remoteBranches())).toEqual(["safedeploy/PRP-A"]);
    expect(
      (await readGovernance()).filter(
        (e) =>
          e.type !== "governance.action-requested" &&
          (e.data as { proposalId?: string }).proposalId === "PRP-DONE",
      ),
    ).toEqual([]);
  });

  it("with SAFEDEPLOY_DRY_RUN=1 reports the diff and pushes nothing", async () => {
    // A dry-run replica alone on its own namespace's consumer would be cleaner; here the normal
    // replicas stop first so the dry one gets the message.
    await Promise.all(replicas.splice(0).map((r) => r.shutdown("switch to dry run")));
    await start({ SAFEDEPLOY_DRY_RUN: "1" });
    await publishApproved(
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
