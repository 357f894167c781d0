import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope } from "@safedeploy/schema";
import {
  budgetEvaluationEvent,
  createTestBus,
  readStream,
  testServiceEnv,
  waitUntil,
} from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { policyService } from "../src/service.js";

const catalog = new URL("../../../test/fixtures/catalog/governance", import.meta.url).pathname;
let harness: TestBus;
let replica: ServiceHandle;
const origin = Date.now() - 30 * 60_000; // evidence from half an hour ago, second by second
const at = (second: number) => new Date(origin + second * 1_000).toISOString();

const governance = async (type: string, service = "checkout"): Promise<Envelope[]> =>
  (await readStream(harness.bus, "GOVERNANCE")).filter(
    (e) => e.type === type && e.service === service,
  );

/** Publishes evaluations and waits until the policy service has acted on the last one. */
async function feed(...evaluations: Envelope<"budget.evaluated">[]) {
  const consumer = `${harness.bus.ns.prefix}policy`;
  const stream = `${harness.bus.ns.prefix}BUDGET`;
  for (const e of evaluations) await publishEvent(harness.bus, e);
  await waitUntil(
    async () => {
      const info = await harness.bus.jsm.consumers.info(stream, consumer);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    10_000,
    () => "the policy service did not take the evaluations in",
  );
}

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  replica = await startService(policyService, {
    env: testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog }),
  });
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

describe("structural policy", () => {
  it("publishes a blocked verdict at start for a service declared wrong, before any evaluation", async () => {
    const [verdict] = await governance("governance.verdict", "legacy");
    expect(
      verdict?.type === "governance.verdict" && verdict.data.reasons.map((r) => r.code),
    ).toEqual(["no-rollback", "canary-required", "stale-evidence"]);
    expect(verdict).toMatchObject({ data: { allowed: false, verdict: "block" } });
  });
});

describe("freeze events", () => {
  it("an exhausted budget opens one freeze, published once however often it is exhausted", async () => {
    await feed(
      budgetEvaluationEvent("legacy", at(1), "exhausted"),
      budgetEvaluationEvent("legacy", at(2), "exhausted"),
    );
    const opened = await governance("governance.freeze-opened", "legacy");
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({
      data: {
        origin: "exhaustion",
        from: at(1),
        actor: "system",
        reason: "error budget exhausted",
      },
    });
    const lifted = await requestCommand(harness.bus, "freeze.lift", {
      service: "legacy",
      actor: "ana",
      reason: "budget recovered",
    });
    expect(lifted.ok).toBe(true);
    expect(await governance("governance.freeze-lifted", "legacy")).toMatchObject([
      { data: { actor: "ana", reason: "budget recovered" } },
    ]);
  });
});

describe("canary bake", () => {
  it("refuses a canary step for a service without a canary strategy", async () => {
    const reply = await requestCommand(harness.bus, "canary.step", {
      service: "legacy",
      weight: 10,
      actor: "ci",
      reason: "deploy",
    });
    expect(reply).toMatchObject({ ok: false, error: { code: "invalid_request" } });
  });

  it("asks once for promotion when a step stays healthy through its bake time, never while blocked", async () => {
    const step = await requestCommand(harness.bus, "canary.step", {
      service: "checkout",
      weight: 10,
      actor: "ci",
      reason: "deployed v2 to 10%",
      since: at(10),
    });
    expect(step).toMatchObject({ ok: true, result: { weight: 10, since: at(10), next: 50 } });
    expect(await governance("governance.canary-step")).toHaveLength(1);

    await feed(budgetEvaluationEvent("checkout", at(11), "normal")); // 1 s of a 2 s bake
    expect(await governance("governance.canary-healthy")).toHaveLength(0);
    await feed(budgetEvaluationEvent("checkout", at(13), "fast-burn", { burn1h: 16 }));
    expect(await governance("governance.canary-healthy")).toHaveLength(0); // baked, but blocked
    // One at a time: the first evidence past the bake time is the one that asks.
    await feed(budgetEvaluationEvent("checkout", at(14), "normal"));
    await feed(budgetEvaluationEvent("checkout", at(15), "normal"));
    const healthy = await governance("governance.canary-healthy");
    expect(healthy).toHaveLength(1);
    expect(healthy[0]).toMatchObject({
      data: { weight: 10, next: 50, since: at(10), bakeTime: "2s", evaluatedAt: at(14) },
    });

    // The next step bakes on its own clock and asks again, once.
    await requestCommand(harness.bus, "canary.step", {
      service: "checkout",
      weight: 50,
      actor: "ci",
      reason: "promoted",
      since: at(20),
    });
    await feed(budgetEvaluationEvent("checkout", at(23), "normal"));
    await feed(budgetEvaluationEvent("checkout", at(24), "normal"));
    expect((await governance("governance.canary-healthy")).map((e) => e.data)).toMatchObject([
      { weight: 10, next: 50 },
      { weight: 50, next: 100, since: at(20) },
    ]);
  });
});
