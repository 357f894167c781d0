import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKv, provision } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope, ReleaseTrainDocument, TrainView } from "@safedeploy/schema";
import { createTestBus, readStream, waitUntil } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { TrainRecord } from "../src/index.js";
import {
  SERVICES,
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

function train(
  name: string,
  tag: string,
  options: { guardWindow?: string; followUps?: string[] } = {},
): ReleaseTrainDocument {
  return {
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name },
    spec: {
      steps: SERVICES.map((service) => ({
        service,
        image: `shop/${service}:${tag}`,
        guardWindow: options.guardWindow ?? "1s",
        checks: [
          {
            http: health.url(service),
            expect: { status: 200, json: { "$.status": "ok" }, bodyContains: "ready" },
            severity: "fatal" as const,
          },
        ],
      })),
      finalChecks: [],
      followUps: options.followUps ?? [],
    },
  };
}

const start = (document: ReleaseTrainDocument, dryRun = false): Promise<TrainView> =>
  startTrain(harness, document, { dryRun });

async function governance(trainId: string): Promise<Envelope[]> {
  return (await readStream(harness.bus, "GOVERNANCE")).filter(
    (e) => (e.data as { trainId?: string }).trainId === trainId,
  );
}

/** The reverts the train asked the proposal service for. */
const proposals = () => Promise.resolve(policy.reverts);

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

describe("release-train service", () => {
  it("dry run: computes every step's diff, pushes nothing, and plans what the real run executes", async () => {
    const started = await start(train("dry", "v2"), true);
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(await env.branches()).toEqual([]);
    for (const step of done.steps) {
      expect(step.diff).toContain(`+          image: shop/${step.service}:v2 # pinned`);
    }
    expect(await env.imageOnMain("cart")).toBe("v1");
    const planned = (await governance(started.id)).find(
      (e) => e.type === "governance.train-started",
    );
    expect(planned?.data).toMatchObject({ dryRun: true });
    (globalThis as { dryPlan?: unknown }).dryPlan = (planned?.data as { steps: unknown }).steps;
  }, 30_000);

  it("promotes four healthy services in order, each after the previous one's guard window", async () => {
    const started = await start(train("all-healthy", "v2"));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps.map((s) => s.phase)).toEqual(["checked", "checked", "checked", "checked"]);
    for (let i = 1; i < done.steps.length; i++) {
      const previous = done.steps[i - 1]!;
      expect(done.steps[i]!.deployedAt! >= previous.guardUntil!).toBe(true);
      expect(Date.parse(previous.guardUntil!) - Date.parse(previous.deployedAt!)).toBe(1_000);
    }
    for (const service of SERVICES) expect(await env.imageOnMain(service)).toBe("v2");
    expect((await env.branches()).sort()).toEqual(
      [1, 2, 3, 4].map((n) => `safedeploy/${started.id}-s${n}`),
    );
    const events = await governance(started.id);
    const real = events.find((e) => e.type === "governance.train-started");
    expect((real?.data as { steps: unknown }).steps).toEqual(
      (globalThis as { dryPlan?: unknown }).dryPlan,
    );
    const manifests = events.filter((e) => e.type === "governance.train-manifest");
    const last = manifests.at(-1)?.data as unknown as {
      manifest: { promoted: { commit: string }[] };
    };
    expect(last.manifest.promoted.map((p) => p.commit)).toEqual(done.steps.map((s) => s.commit));
    expect(done.manifest).toEqual(last.manifest);
  }, 40_000);

  it("runs a finished train again: every step already in place is checked, nothing is pushed", async () => {
    const branches = await env.branches();
    const started = await start(train("all-healthy-again", "v2"));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps.map((s) => [s.phase, s.outcome, s.commit])).toEqual(
      SERVICES.map(() => ["checked", "ok", null]),
    );
    for (const step of done.steps) {
      expect(step.evidence).toContainEqual({
        type: "in-place",
        detail: expect.stringContaining("already runs shop/") as string,
      });
    }
    expect(await env.branches()).toEqual(branches);
  }, 40_000);

  it("halts after step 3 when checkout fails its content check and proposes a revert of checkout only", async () => {
    health.fail("checkout");
    try {
      const started = await start(train("bad-checkout", "v3"));
      // The halt is decided first; the revert is the action carried out after it.
      const done = await waitForTrain(
        harness,
        started.id,
        (t) => t.state !== "running" && t.revert !== null,
      );
      expect(done.state).toBe("halted");
      expect(done.steps.map((s) => s.phase)).toEqual(["checked", "checked", "checked", "pending"]);
      expect(done.steps[2]!.outcome).toBe("fatal");
      expect(done.revert).toMatchObject({ service: "checkout", step: 2 });
      const revert = (await proposals()).filter((p) => p.causeId.startsWith(started.id));
      expect(revert).toHaveLength(1);
      expect(revert[0]).toMatchObject({
        service: "checkout",
        path: "envs/prod/checkout",
        causeId: `${started.id}:step-3`,
        actor: "alice",
      });
      expect(await env.imageOnMain("cart")).toBe("v3");
      expect(await env.imageOnMain("catalog")).toBe("v3");
      expect(await env.imageOnMain("payments")).toBe("v2");
      const evidence = JSON.stringify(done.steps[2]!.evidence);
      expect(evidence).toContain("degraded");
      // Its gate blocks from now on: the guard failed for checkout, and for no one else.
      expect(policy.guards.filter((g) => g.trainId === started.id)).toMatchObject([
        { service: "checkout", step: 2, train: "bad-checkout" },
      ]);
    } finally {
      health.heal("checkout");
    }
  }, 40_000);

  it("flags manual triage, reverting nothing, when two services fail at once", async () => {
    const before = (await proposals()).length;
    const started = await start(train("two-failing", "v4", { guardWindow: "2s" }));
    // catalog goes bad while checkout (step 3) is in its guard window, and checkout is bad too.
    await waitForTrain(harness, started.id, (t) => t.steps[2]!.phase === "guarding");
    health.fail("catalog");
    health.fail("checkout");
    try {
      const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
      expect(done.state).toBe("needs-triage");
      expect(done.revert).toBeNull();
      expect(done.triage?.steps).toEqual([1, 2]);
      expect(done.triage?.evidence[0]).toMatch(/2 services failing at once/);
      expect((await proposals()).length).toBe(before);
      // Each service that failed its own checks has its guard failed.
      const failedGuards = () => policy.guards.filter((g) => g.trainId === started.id);
      await waitUntil(
        () => Promise.resolve(failedGuards().length === 2),
        10_000,
        () => `guards: ${JSON.stringify(failedGuards())}`,
      );
      expect(
        policy.guards.filter((g) => g.trainId === started.id).map((g) => [g.service, g.step]),
      ).toEqual([
        ["catalog", 1],
        ["checkout", 2],
      ]);
    } finally {
      health.heal("catalog");
      health.heal("checkout");
    }
  }, 40_000);

  it("resumes a train stopped during a guard window on a new replica", async () => {
    const started = await start(train("resumed", "v5", { guardWindow: "3s" }));
    await waitForTrain(harness, started.id, (t) => t.steps[1]!.phase === "guarding");
    await replica.shutdown("test");
    const halfway = await trainStatusDirect(started.id);
    expect(halfway.steps[1]!.phase).toBe("guarding");
    replica = await startTrainReplica(harness, catalogPath);
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    for (const service of SERVICES) expect(await env.imageOnMain(service)).toBe("v5");
  }, 60_000);

  it("waits for a step to be live (deployedWhen) and takes that moment as its deploy time; halts when it never is", async () => {
    const live = (name: string, tag: string, within: string): ReleaseTrainDocument => {
      const document = train(name, tag);
      const [first, ...rest] = document.spec.steps;
      return {
        ...document,
        spec: {
          ...document.spec,
          steps: [
            {
              ...first!,
              deployedWhen: {
                http: health.url("cart"),
                expect: { status: 200, json: { "$.version": tag } },
                within,
              },
            },
            ...rest,
          ],
        },
      };
    };
    const started = await start(live("deployed-when", "v8", "1m"));
    await waitForTrain(harness, started.id, (t) => t.steps[0]!.phase === "deploying");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const servedAt = new Date().toISOString();
    health.serve("cart", "v8");
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps[0]!.deployedAt! >= servedAt).toBe(true);
    expect(done.steps[0]!.evidence).toContainEqual(
      expect.objectContaining({ type: "deployed-when", outcome: "ok" }),
    );
    expect(done.manifest).toMatchObject({
      promoted: [{ promotedAt: done.steps[0]!.deployedAt }, {}, {}, {}],
    });

    // v9 is pushed, but cart goes on serving v8.
    const never = await start(live("never-deployed", "v9", "2s"));
    const halted = await waitForTrain(
      harness,
      never.id,
      (t) => t.state !== "running" && t.revert !== null,
    );
    expect(halted.state).toBe("halted");
    expect(halted.steps.map((s) => s.phase)).toEqual(["failed", "pending", "pending", "pending"]);
    expect(halted.reason).toMatch(/not deployed within 2s: GET .*\$\.version/);
    expect(halted.revert).toMatchObject({ service: "cart", step: 0 });
    health.serve("cart", "v1");
  }, 60_000);

  it("renews its claim while a slow check runs: another replica with a shorter lease than the check does not run it again", async () => {
    await replica.shutdown("test");
    const shortLease = { leaseMs: 600 };
    const replicas = [
      await startTrainReplica(harness, catalogPath, {}, shortLease),
      await startTrainReplica(harness, catalogPath, {}, shortLease),
    ];
    health.slow("cart", 2_000); // cart is step 1; its check outlasts three leases
    try {
      const before = health.calls("cart");
      const started = await start(train("slow-check", "v7"));
      await waitForTrain(harness, started.id, (t) => t.steps[0]!.phase === "checked");
      expect(health.calls("cart") - before).toBe(1);
      const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
      expect(done.state).toBe("completed");
    } finally {
      health.slow("cart", 0);
      for (const handle of replicas) await handle.shutdown("test");
      replica = await startTrainReplica(harness, catalogPath);
    }
  }, 60_000);

  it("fires a follow-up after the service restarted, attributes the failure to its step and fails that service's guard", async () => {
    const started = await start(train("followed", "v6", { followUps: ["4s"] }));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.followUps).toMatchObject([{ after: "4s", phase: "scheduled" }]);
    await replica.shutdown("test");
    health.fail("payments");
    try {
      replica = await startTrainReplica(harness, catalogPath);
      const followed = await waitForTrain(
        harness,
        started.id,
        (t) => t.followUps[0]!.phase !== "scheduled",
      );
      expect(followed.followUps[0]).toMatchObject({ phase: "failed", attributedStep: 3 });
      const event = (await governance(started.id)).find(
        (e) =>
          e.type === "governance.follow-up" && (e.data as { phase: string }).phase === "failed",
      );
      expect(event?.data).toMatchObject({ attributedStep: 3 });
      await waitForTrain(harness, started.id, (t) => t.revert !== null);
      const guards = policy.guards.filter((g) => g.trainId === started.id);
      expect(guards.map((g) => [g.service, g.step])).toEqual([["payments", 3]]);
      expect(guards[0]!.reason).toMatch(
        /^follow-up \+4s failed: step 4 \(payments\) is failing — step 4 payments: /,
      );
      expect(guards[0]!.at).toBe(followed.followUps[0]!.at);
    } finally {
      health.heal("payments");
    }
  }, 60_000);
});

/** The stored state, read without any replica running. */
async function trainStatusDirect(trainId: string) {
  const kv = await openKv(harness.bus, "trains", TrainRecord);
  const entry = await kv.get(trainId);
  return { steps: entry!.value.state.steps };
}
