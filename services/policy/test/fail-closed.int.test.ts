// The policy service fails closed on the real bus: evidence that stops arriving turns the
// published verdict unknown on the service's own clock (no message needed), and a failed release
// guard blocks the gate until an approver clears it or the service's revert is executed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, GateView } from "@safedeploy/schema";
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
/** A 1 s poll interval: evidence is stale after 3 s (the catalog names no staleAfter). */
const POLL = "1s";
let harness: TestBus;
let replica: ServiceHandle;

async function gate(service = "checkout"): Promise<GateView> {
  const reply = await requestCommand(harness.bus, "gate.query", { service });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

const verdicts = async (service = "checkout") =>
  (await readStream(harness.bus, "GOVERNANCE")).filter(
    (e): e is Envelope<"governance.verdict"> =>
      e.type === "governance.verdict" && e.service === service,
  );

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  replica = await startService(policyService, {
    env: testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog, SAFEDEPLOY_POLL_INTERVAL: POLL }),
  });
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

describe("evidence freshness on the policy service's clock", () => {
  it("passes on fresh evidence, then turns unknown and publishes so once it stops arriving", async () => {
    const fresh = new Date().toISOString();
    await publishEvent(harness.bus, budgetEvaluationEvent("checkout", fresh, "normal"));
    await waitUntil(
      async () => (await gate()).verdict === "pass",
      5_000,
      () => "never passed",
    );
    const passed = await gate();
    expect(passed.evidenceAge).toBeLessThanOrEqual(3);
    // Nothing more arrives: within staleAfter (3 s) plus a tick the gate and the published
    // verdict both say unknown, naming the age and the threshold.
    await waitUntil(
      async () => (await gate()).verdict === "unknown",
      6_000,
      () => "the gate kept trusting old evidence",
    );
    const blind = await gate();
    expect(blind).toMatchObject({ allowed: false, verdict: "unknown" });
    expect(blind.reasons).toMatchObject([{ code: "stale-evidence", threshold: 3 }]);
    await waitUntil(
      async () => (await verdicts()).at(-1)?.data.verdict === "unknown",
      5_000,
      () => "no stale verdict was published",
    );
    const published = (await verdicts()).at(-1)!;
    expect(published.data.causeId).toMatch(/^policy\.clock:checkout:/);
    expect(published.data.evidence).toEqual([{ slo: "availability", evaluatedAt: fresh }]);
    // Older than the threshold; rounded to 0.1 s, 3.04 s reads 3.
    expect(published.data.evidenceAge).toBeGreaterThanOrEqual(3);
    // Evidence again: it passes again.
    await publishEvent(
      harness.bus,
      budgetEvaluationEvent("checkout", new Date().toISOString(), "normal"),
    );
    await waitUntil(
      async () => (await gate()).verdict === "pass",
      5_000,
      () => "never passed again",
    );
    await waitUntil(
      async () => (await verdicts()).at(-1)?.data.verdict === "pass",
      5_000,
      () => "the pass was not published",
    );
  });
});

describe("release guards", () => {
  const keepFresh = () =>
    publishEvent(
      harness.bus,
      budgetEvaluationEvent("checkout", new Date().toISOString(), "normal"),
    );

  it("a failed guard blocks until an approver clears it; asking twice records one guard", async () => {
    await keepFresh();
    await waitUntil(
      async () => (await gate()).verdict === "pass",
      5_000,
      () => "never passed",
    );
    const request = {
      service: "checkout",
      train: "shop-42",
      trainId: "TRN-ABC",
      step: 1,
      reason: "fatal check http://checkout/healthz: $.status is degraded, expected ok",
      evidence: ["step 2 checkout: http://checkout/healthz (fatal): $.status is degraded"],
      at: new Date().toISOString(),
    };
    const failed = await requestCommand(harness.bus, "guard.fail", request);
    const again = await requestCommand(harness.bus, "guard.fail", request);
    expect(failed).toMatchObject({ ok: true, result: { id: "guard:checkout:TRN-ABC:s2" } });
    expect(again).toEqual(failed);
    await keepFresh();
    const blocked = await gate();
    expect(blocked.verdict).toBe("block");
    expect(blocked.reasons).toMatchObject([
      {
        code: "release-guard-failed",
        value: "TRN-ABC",
        message: expect.stringContaining(
          "release train shop-42 (TRN-ABC) step 2 failed its guard",
        ) as string,
      },
    ]);
    const events = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.guard-failed",
    );
    expect(events).toHaveLength(1);
    const cleared = await requestCommand(harness.bus, "guard.clear", {
      service: "checkout",
      actor: "ana",
      reason: "checked: a bad health check",
    });
    expect(cleared).toMatchObject({ ok: true, result: { cleared: [{ clearedBy: "ana" }] } });
    await keepFresh();
    expect((await gate()).verdict).toBe("pass");
  });

  it("an executed revert of the service clears its guard; a dry run does not", async () => {
    await requestCommand(harness.bus, "guard.fail", {
      service: "checkout",
      train: "shop-43",
      trainId: "TRN-DEF",
      step: 0,
      reason: "error regression",
      evidence: [],
      at: new Date().toISOString(),
    });
    await keepFresh();
    expect((await gate()).verdict).toBe("block");
    const completed = (dryRun: boolean) =>
      createEnvelope(
        {
          type: "governance.action-completed",
          id: messageId("governance.action-completed", "PRP-REVERT", dryRun ? "dry-run" : "real"),
          service: "checkout",
          data: {
            proposalId: "PRP-REVERT",
            incidentId: null,
            kind: "rollback-rollout",
            at: new Date().toISOString(),
            branch: "safedeploy/PRP-REVERT",
            commit: "0123456789abcdef",
            prUrl: null,
            diff: "",
            dryRun,
          },
        },
        { source: "git-actuator", time: new Date().toISOString() },
      );
    await publishEvent(harness.bus, completed(true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await keepFresh();
    expect((await gate()).verdict).toBe("block");
    await publishEvent(harness.bus, completed(false));
    await waitUntil(
      async () => {
        await keepFresh();
        return (await gate()).verdict === "pass";
      },
      5_000,
      () => "the executed revert did not clear the guard",
    );
    const clearance = (await readStream(harness.bus, "GOVERNANCE")).find(
      (e) =>
        e.type === "governance.guard-cleared" && e.data.guardId === "guard:checkout:TRN-DEF:s1",
    );
    expect(clearance).toMatchObject({ data: { by: "revert", actor: "system" } });
  });
});
