// Every path to production obeys the same governance (DESIGN.md invariant 9), against a real
// bus and a real environment repo: a step's gate is asked before anything is pushed (a frozen
// service halts the train with no branch), each promotion is a proposal that waits, durably, for
// the distinct approvers its service requires (then the gate is asked again), and a rejection
// halts the train with nothing pushed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope, GateReason, ReleaseTrainDocument } from "@safedeploy/schema";
import { createTestBus, readStream } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import {
  catalogYaml,
  createEnvRepo,
  startActuator,
  startFakePolicy,
  startHealthEndpoints,
  startTrain,
  startTrainReplica,
  waitForTrain,
  writeCatalog,
} from "./harness.js";
import type { EnvRepoFixture } from "./harness.js";

let harness: TestBus;
let env: EnvRepoFixture;
let health: Awaited<ReturnType<typeof startHealthEndpoints>>;
let policy: Awaited<ReturnType<typeof startFakePolicy>>;
let actuator: { stop(): Promise<void> };
let catalogPath: string;
let replica: ServiceHandle;

function train(name: string, tag: string, services: readonly string[]): ReleaseTrainDocument {
  return {
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name },
    spec: {
      steps: services.map((service) => ({
        service,
        image: `shop/${service}:${tag}`,
        guardWindow: "1s",
        checks: [
          {
            http: health.url(service),
            expect: { status: 200, json: { "$.status": "ok" } },
            severity: "fatal" as const,
          },
        ],
      })),
      finalChecks: [],
      followUps: [],
    },
  };
}

const trainBranches = async (trainId: string) =>
  (await env.branches()).filter((b) => b.startsWith(`safedeploy/${trainId}`));

async function governance(trainId: string): Promise<Envelope[]> {
  return (await readStream(harness.bus, "GOVERNANCE")).filter(
    (e) => (e.data as { trainId?: string }).trainId === trainId,
  );
}

const freeze: GateReason = {
  code: "freeze-active",
  message: "manual freeze until 2030-01-01T00:00:00.000Z: launch week",
  value: "freeze:catalog:manual:2026-01-01T00:00:00.000Z",
  threshold: "2030-01-01T00:00:00.000Z",
};

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  env = await createEnvRepo();
  health = await startHealthEndpoints();
  policy = await startFakePolicy(harness);
  actuator = await startActuator(harness, env);
  catalogPath = await writeCatalog(env.root, catalogYaml());
  replica = await startTrainReplica(harness, catalogPath);
});

afterAll(async () => {
  await replica.shutdown("test");
  await actuator.stop();
  await policy.stop();
  await health.close();
  await harness.cleanup();
  await env.close();
});

describe("release-train governance", () => {
  it("a train over a frozen service pushes nothing and halts naming the freeze; a dry run says the same", async () => {
    policy.setGate("catalog", "block", [freeze]);
    try {
      const started = await startTrain(harness, train("frozen", "v2", ["catalog", "cart"]));
      const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
      expect(done.state).toBe("halted");
      expect(done.reason).toBe(
        `step 1 (catalog) blocked by its gate: freeze-active: ${freeze.message}`,
      );
      expect(done.steps.map((s) => s.phase)).toEqual(["blocked", "pending"]);
      expect(done.steps[0]).toMatchObject({
        gate: { verdict: "block", reasons: [freeze] },
        approval: null,
        commit: null,
        branch: null,
      });
      expect(done.revert).toBeNull();
      expect(await env.branches()).toEqual([]);
      expect(await env.imageOnMain("catalog")).toBe("v1");
      // No proposal, no failed guard: nothing was pushed.
      expect(policy.promotionRequests.filter((p) => p.trainId === started.id)).toEqual([]);
      expect(policy.guards.filter((g) => g.trainId === started.id)).toEqual([]);
      const events = await governance(started.id);
      expect(events.some((e) => e.type === "governance.action-requested")).toBe(false);
      expect(
        events.find((e) => e.type === "governance.train-step" && e.data.phase === "blocked")?.data,
      ).toMatchObject({ step: 0, phase: "blocked", details: { gate: { verdict: "block" } } });

      const dry = await startTrain(harness, train("frozen-dry", "v2", ["catalog", "cart"]), {
        dryRun: true,
      });
      const shown = await waitForTrain(harness, dry.id, (t) => t.state !== "running");
      expect(shown).toMatchObject({ state: "halted", reason: done.reason });
      expect(shown.steps.map((s) => s.phase)).toEqual(["blocked", "pending"]);
      expect(await env.branches()).toEqual([]);
    } finally {
      policy.setGate("catalog", "pass");
    }
  }, 40_000);

  it("a service requiring two approvers waits in awaiting-approval, across a restart, until the second approves; then its gate is asked again and it is promoted", async () => {
    policy.requireApprovals("checkout", 2);
    const started = await startTrain(harness, train("two-approvers", "v3", ["cart", "checkout"]));
    const proposalId = `${started.id}-s2`;
    const waiting = await waitForTrain(
      harness,
      started.id,
      (t) => t.steps[1]?.phase === "awaiting-approval",
    );
    expect(waiting.state).toBe("running");
    expect(waiting.steps[1]).toMatchObject({
      proposalId,
      gate: { verdict: "pass", reasons: [] },
      approval: { proposalId, state: "pending", required: 2, approvals: ["alice"] },
      commit: null,
    });
    expect(policy.promotion(proposalId)).toMatchObject({
      kind: "promote-release",
      state: "pending",
      approvals: [{ by: "alice" }],
    });
    expect(policy.promotionRequests.find((p) => p.proposalId === proposalId)).toMatchObject({
      service: "checkout",
      trainId: started.id,
      step: 1,
      actor: "alice",
      plan: { action: "set-image", path: "envs/prod/checkout", image: "shop/checkout:v3" },
    });
    // Step 1's own proposal needed only alice: it was promoted, step 2 waits with nothing pushed.
    expect(await trainBranches(started.id)).toEqual([`safedeploy/${started.id}-s1`]);

    // The approval arrives while no replica runs: the durable consumer keeps it.
    await replica.shutdown("test");
    const gateAsked = policy.gateQueries.filter((s) => s === "checkout").length;
    await policy.approve(proposalId, "bob");
    replica = await startTrainReplica(harness, catalogPath);
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps[1]).toMatchObject({
      phase: "checked",
      approval: { state: "approved", required: 2, approvals: ["alice", "bob"] },
    });
    // Asked again after the approval (and once more after the guard window).
    expect(policy.gateQueries.filter((s) => s === "checkout").length).toBeGreaterThanOrEqual(
      gateAsked + 2,
    );
    expect(await trainBranches(started.id)).toEqual([
      `safedeploy/${started.id}-s1`,
      `safedeploy/${started.id}-s2`,
    ]);
    expect(await env.imageOnMain("checkout")).toBe("v3");
  }, 60_000);

  it("an approval that comes in while the gate has closed promotes nothing", async () => {
    policy.requireApprovals("payments", 2);
    const started = await startTrain(harness, train("closed-later", "v4", ["payments"]));
    await waitForTrain(harness, started.id, (t) => t.steps[0]?.phase === "awaiting-approval");
    policy.setGate("payments", "unknown", [
      {
        code: "stale-evidence",
        message: "SLO availability: the newest evidence is 400 s old > staleAfter 90s",
        value: 400,
        threshold: 90,
      },
    ]);
    try {
      await policy.approve(`${started.id}-s1`, "bob");
      const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
      expect(done.state).toBe("halted");
      expect(done.steps[0]).toMatchObject({
        phase: "blocked",
        gate: { verdict: "unknown" },
        approval: { state: "approved" },
      });
      expect(done.reason).toMatch(/^step 1 \(payments\) blocked by its gate \(unknown/);
      expect(await trainBranches(started.id)).toEqual([]);
    } finally {
      policy.setGate("payments", "pass");
    }
  }, 40_000);

  it("a rejection halts the train with nothing pushed", async () => {
    policy.requireApprovals("payments", 2);
    const started = await startTrain(harness, train("rejected", "v5", ["payments", "cart"]));
    await waitForTrain(harness, started.id, (t) => t.steps[0]?.phase === "awaiting-approval");
    await policy.reject(`${started.id}-s1`, "bob", "not during the sale");
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done).toMatchObject({
      state: "halted",
      reason: "step 1 (payments) promotion rejected by bob: not during the sale",
      revert: null,
    });
    expect(done.steps.map((s) => s.phase)).toEqual(["rejected", "pending"]);
    expect(done.steps[0]?.approval).toMatchObject({ state: "rejected" });
    expect(done.steps[0]?.evidence).toContainEqual({
      type: "rejection",
      by: "bob",
      reason: "not during the sale",
    });
    expect(await trainBranches(started.id)).toEqual([]);
    expect(await env.imageOnMain("payments")).toBe("v1");
  }, 40_000);

  it("a fatal content check fails the guard of that service (its gate then blocks), beside the revert", async () => {
    health.fail("cart");
    try {
      const started = await startTrain(harness, train("bad-cart", "v6", ["cart"]));
      const done = await waitForTrain(
        harness,
        started.id,
        (t) => t.state !== "running" && t.revert !== null,
      );
      expect(done.state).toBe("halted");
      const guards = policy.guards.filter((g) => g.trainId === started.id);
      expect(guards).toHaveLength(1);
      expect(guards[0]).toMatchObject({
        service: "cart",
        train: "bad-cart",
        step: 0,
        reason: expect.stringContaining("step 1 (cart) is failing") as string,
        evidence: [expect.stringContaining("degraded") as string],
      });
      expect(done.steps[0]?.evidence).toContainEqual({
        type: "guard-failed",
        guardId: `guard:cart:${started.id}:0`,
      });
    } finally {
      health.heal("cart");
    }
  }, 40_000);
});
