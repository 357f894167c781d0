// Strategy hooks and the halt policy against a real bus, a real environment repo and a local
// HTTP hook receiver: a canary's promote hook is called once per promoted step with its
// idempotency key, a blue_green cutover hook likewise, a failing hook halts the train at its
// step (revert proposed, rollback hook called), a dry run calls nothing; a canary's manifest
// hooks are git changes made by the git actuator, waited for like promotions; warnings halt
// only under haltOn warning.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { ReleaseTrainDocument, TrainView } from "@safedeploy/schema";
import { createTestBus, git, serviceYaml, yamlDocuments } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import {
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

interface HookCall {
  readonly path: string;
  readonly method: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

/** A hook receiver: records every call; paths in `failing` answer 500. */
async function startHookReceiver() {
  const calls: HookCall[] = [];
  const failing = new Set<string>();
  const server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      const path = request.url ?? "";
      calls.push({
        path,
        method: request.method ?? "",
        headers: request.headers,
        body: JSON.parse(text || "{}") as Record<string, unknown>,
      });
      if (failing.has(path)) {
        response.writeHead(500, { "content-type": "text/plain" }).end("rollout controller down");
      } else {
        response.writeHead(202, { "content-type": "application/json" }).end('{"accepted":true}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    calls,
    failing,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

let harness: TestBus;
let env: EnvRepoFixture;
let health: Awaited<ReturnType<typeof startHealthEndpoints>>;
let hooks: Awaited<ReturnType<typeof startHookReceiver>>;
let policy: Awaited<ReturnType<typeof startFakePolicy>>;
let actuator: { stop(): Promise<void> };
let replica: ServiceHandle;

function catalog(): string {
  const withSlo = (name: string, spec = "") => serviceYaml(name, { window: "10m", spec });
  return yamlDocuments([
    withSlo(
      "cart",
      `  deployment:
    strategy: canary
    canary:
      steps: [10, 100]
      bakeTime: 1s
      promoteHook: { http: { url: "${hooks.url("/cart/promote")}", headers: { x-hook-token: s3cret } } }
      rollbackHook: { http: { url: "${hooks.url("/cart/rollback")}", method: PUT } }
`,
    ),
    withSlo(
      "catalog",
      `  deployment:
    strategy: blue_green
    blueGreen:
      cutoverHook: { http: { url: "${hooks.url("/catalog/cutover")}" } }
`,
    ),
    withSlo("checkout"),
    withSlo(
      "payments",
      `  deployment:
    strategy: canary
    canary:
      steps: [25, 100]
      bakeTime: 1s
      promoteHook: { manifest: { path: envs/prod/payments, patch: { spec: { replicas: 4 } } } }
      rollbackHook: { manifest: { path: envs/prod/payments, patch: { spec: { replicas: 1 } } } }
`,
    ),
  ]);
}

/** A one-step train of payments, whose canary hooks are manifest patches. */
function paymentsTrain(name: string, tag: string): ReleaseTrainDocument {
  return {
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name },
    spec: {
      steps: [
        {
          service: "payments",
          image: `shop/payments:${tag}`,
          guardWindow: "1s",
          checks: [
            {
              http: health.url("payments"),
              expect: { status: 200, json: { "$.status": "ok" } },
              severity: "fatal",
            },
          ],
        },
      ],
      finalChecks: [],
      followUps: [],
    },
  };
}

function train(
  name: string,
  tag: string,
  severity: "fatal" | "warning" = "fatal",
): ReleaseTrainDocument {
  return {
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name },
    spec: {
      steps: (["cart", "catalog", "checkout"] as const).map((service) => ({
        service,
        image: `shop/${service}:${tag}`,
        guardWindow: "1s",
        checks: [
          {
            http: health.url(service),
            expect: { status: 200, json: { "$.status": "ok" } },
            severity,
          },
        ],
      })),
      finalChecks: [],
      followUps: [],
    },
  };
}

const start = (
  document: ReleaseTrainDocument,
  options: { dryRun?: boolean; haltOn?: "fatal" | "warning" } = {},
): Promise<TrainView> => startTrain(harness, document, options);

const callsOf = (trainId: string) =>
  hooks.calls.filter((call) => (call.body.trainId as string | undefined) === trainId);
const hookEvidence = (step: TrainView["steps"][number]) =>
  step.evidence.filter((e) => (e as { type?: string }).type === "hook") as {
    hook: string;
    kind: string;
    outcome: string;
    status: number | null;
    detail: string;
    at: string;
    change?: { branch: string; commit: string; diff: string };
  }[];

/** The lines a diff adds and removes, without its headers. */
const changedLines = (diff: string) => diff.split("\n").filter((l) => /^[+-](?![+-])/.test(l));

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  env = await createEnvRepo();
  health = await startHealthEndpoints();
  hooks = await startHookReceiver();
  policy = await startFakePolicy(harness);
  actuator = await startActuator(harness, env);
  replica = await startTrainReplica(harness, await writeCatalog(env.root, catalog()));
});

afterAll(async () => {
  await replica.shutdown("test");
  await actuator.stop();
  await policy.stop();
  await hooks.close();
  await health.close();
  await harness.cleanup();
  await env.close();
});

describe("strategy hooks", () => {
  it("a dry run lists the hooks and calls none", async () => {
    const started = await start(train("hooks-dry", "v2"), { dryRun: true });
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(hooks.calls).toEqual([]);
    expect(hookEvidence(done.steps[0]!)).toMatchObject([{ hook: "promote", outcome: "skipped" }]);
    expect(hookEvidence(done.steps[1]!)).toMatchObject([{ hook: "cutover", outcome: "skipped" }]);
    expect(hookEvidence(done.steps[2]!)).toEqual([]);
  }, 30_000);

  it("calls the canary promote hook and the blue_green cutover hook once each, after the change landed", async () => {
    const started = await start(train("hooks-ok", "v3"));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    const calls = callsOf(started.id);
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /cart/promote",
      "POST /catalog/cutover",
    ]);
    const [promote, cutover] = calls;
    expect(promote!.headers["idempotency-key"]).toBe(`${started.id}-s1-promote`);
    expect(promote!.headers["x-hook-token"]).toBe("s3cret");
    expect(promote!.headers["content-type"]).toBe("application/json");
    expect(promote!.body).toEqual({
      train: "hooks-ok",
      trainId: started.id,
      step: 1,
      service: "cart",
      change: { kind: "image", image: "shop/cart:v3", path: "envs/prod/cart" },
      commit: done.steps[0]!.commit,
      phase: "promote",
    });
    expect(cutover!.headers["idempotency-key"]).toBe(`${started.id}-s2-cutover`);
    expect(cutover!.body).toMatchObject({ step: 2, service: "catalog", phase: "cutover" });
    // Called after the change landed on main, and the guard window starts once it answered.
    expect(promote!.body.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(hookEvidence(done.steps[0]!)).toMatchObject([
      { hook: "promote", outcome: "ok", status: 202 },
    ]);
    expect(done.manifest).toMatchObject({
      promoted: [{ hooks: [{ hook: "promote", outcome: "ok" }] }, {}, { hooks: [] }],
    });
    expect(await env.imageOnMain("cart")).toBe("v3");
    // Nothing calls a recorded hook again.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(callsOf(started.id)).toHaveLength(2);
  }, 40_000);

  it("a failing promote hook (500) halts the train at that step: revert proposed, rollback hook called", async () => {
    hooks.failing.add("/cart/promote");
    try {
      const started = await start(train("hooks-fail", "v4"));
      const done = await waitForTrain(
        harness,
        started.id,
        (t) =>
          t.state !== "running" &&
          t.revert !== null &&
          hookEvidence(t.steps[0]!).some((h) => h.hook === "rollback"),
      );
      expect(done.state).toBe("halted");
      expect(done.steps.map((s) => s.phase)).toEqual(["failed", "pending", "pending"]);
      expect(done.reason).toMatch(/promote hook POST .*\/cart\/promote failed: HTTP 500/);
      expect(hookEvidence(done.steps[0]!)).toMatchObject([
        {
          hook: "promote",
          outcome: "failed",
          status: 500,
          detail: "HTTP 500: rollout controller down",
        },
        { hook: "rollback", outcome: "ok", status: 202 },
      ]);
      const calls = callsOf(started.id);
      expect(
        calls.map((c) => `${c.method} ${c.path} ${String(c.headers["idempotency-key"])}`),
      ).toEqual([
        `POST /cart/promote ${started.id}-s1-promote`,
        `PUT /cart/rollback ${started.id}-s1-rollback`,
      ]);
      expect(done.revert).toMatchObject({ service: "cart", step: 0 });
      expect(policy.reverts.filter((r) => r.causeId.startsWith(started.id))).toMatchObject([
        { service: "cart", path: "envs/prod/cart" },
      ]);
      expect(await env.imageOnMain("catalog")).toBe("v3");
    } finally {
      hooks.failing.delete("/cart/promote");
    }
  }, 40_000);
});

describe("manifest hooks", () => {
  it("a dry run shows the manifest hook's diff and pushes nothing", async () => {
    const started = await start(paymentsTrain("manifest-dry", "v2"), { dryRun: true });
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    const [promote] = hookEvidence(done.steps[0]!);
    expect(promote).toMatchObject({ hook: "promote", kind: "manifest", outcome: "skipped" });
    expect(promote!.detail).toMatch(/^dry run: would commit [0-9a-f]{12} on safedeploy\//);
    expect(changedLines(promote!.change!.diff)).toEqual(["-  replicas: 2", "+  replicas: 4"]);
    expect((await env.branches()).filter((b) => b.includes(started.id))).toEqual([]);
  }, 30_000);

  it("commits the canary's promote patch through the git actuator before the guard window", async () => {
    const started = await start(paymentsTrain("manifest-ok", "v3"));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    const [promote] = hookEvidence(done.steps[0]!);
    expect(promote).toMatchObject({ hook: "promote", kind: "manifest", outcome: "ok" });
    expect(promote!.change!.branch).toBe(`safedeploy/${started.id}-s1-promote`);
    expect(changedLines(promote!.change!.diff)).toEqual(["-  replicas: 2", "+  replicas: 4"]);
    // The guard window started once the hook's change was made, not before.
    expect(Date.parse(done.steps[0]!.guardUntil!) - Date.parse(promote!.at)).toBe(1_000);
    expect((await env.branches()).filter((b) => b.includes(started.id))).toEqual([
      `safedeploy/${started.id}-s1`,
      `safedeploy/${started.id}-s1-promote`,
    ]);
    const onMain = await git(env.remote, ["show", "main:envs/prod/payments/deployment.yaml"]);
    expect(onMain).toContain("replicas: 4");
    expect(onMain).toContain("image: shop/payments:v3 # pinned");
    expect(done.manifest).toMatchObject({
      promoted: [{ hooks: [{ hook: "promote", outcome: "ok" }] }],
    });
  }, 30_000);

  it("a patch already in place counts as done: nothing committed, the train goes on", async () => {
    const started = await start(paymentsTrain("manifest-again", "v4"));
    const done = await waitForTrain(harness, started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    const [promote] = hookEvidence(done.steps[0]!);
    expect(promote).toMatchObject({ outcome: "ok" });
    expect(promote!.detail).toMatch(/^already in place: .*already is as the patch says/);
    expect(promote!.change).toBeUndefined();
    expect((await env.branches()).filter((b) => b.includes(started.id))).toEqual([
      `safedeploy/${started.id}-s1`,
    ]);
  }, 30_000);

  it("a failed guard commits the rollback patch beside the revert proposal", async () => {
    health.fail("payments");
    try {
      const started = await start(paymentsTrain("manifest-rollback", "v5"));
      const done = await waitForTrain(
        harness,
        started.id,
        (t) =>
          t.state !== "running" &&
          t.revert !== null &&
          hookEvidence(t.steps[0]!).some((h) => h.hook === "rollback" && h.outcome !== "requested"),
      );
      expect(done.state).toBe("halted");
      const rollback = hookEvidence(done.steps[0]!).find((h) => h.hook === "rollback");
      expect(rollback).toMatchObject({ kind: "manifest", outcome: "ok" });
      expect(rollback!.change!.branch).toBe(`safedeploy/${started.id}-s1-rollback`);
      expect(changedLines(rollback!.change!.diff)).toEqual(["-  replicas: 4", "+  replicas: 1"]);
      expect(done.revert).toMatchObject({ service: "payments", step: 0 });
    } finally {
      health.heal("payments");
    }
  }, 30_000);
});

describe("halt policy", () => {
  it("a failing warning check completes the train by default and halts it under haltOn warning", async () => {
    health.fail("catalog");
    try {
      const lenient = await start(train("warn-default", "v5", "warning"), { dryRun: true });
      const completed = await waitForTrain(harness, lenient.id, (t) => t.state !== "running");
      expect(completed.state).toBe("completed");
      expect(completed.steps[1]!.outcome).toBe("warning");

      const strict = await start(train("warn-halts", "v5", "warning"), {
        dryRun: true,
        haltOn: "warning",
      });
      const halted = await waitForTrain(harness, strict.id, (t) => t.state !== "running");
      expect(halted.state).toBe("halted");
      expect(halted.steps.map((s) => s.phase)).toEqual(["checked", "checked", "pending"]);
      expect(halted.steps[1]!.outcome).toBe("warning");
      expect(halted.reason).toMatch(/step 2 \(catalog\) is failing/);
    } finally {
      health.heal("catalog");
    }
  }, 40_000);
});
