import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { AnyEnvelope, createEnvelope, messageId, qualifiedName } from "@safedeploy/schema";
import type { Envelope, GateView, Severity } from "@safedeploy/schema";
import { createTestBus, testServiceEnv } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { policyService } from "../src/service.js";

const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;
let harness: TestBus;
let replica: ServiceHandle;
let env: Record<string, string>;
// Evidence times: a minute ago, moving forward a second each: fresh for the gate, which trusts
// evidence for three poll intervals (90 s) and asks on the wall clock.
let clock = Date.now() - 60_000;

interface Reading {
  severity?: Severity;
  budgetRemaining?: number | null;
  burn1h?: number;
}

function evaluation(slo: string, reading: Reading = {}): Envelope<"budget.evaluated"> {
  clock += 1_000;
  const at = new Date(clock).toISOString();
  return createEnvelope(
    {
      type: "budget.evaluated",
      id: messageId("budget.evaluated", "checkout", slo, at),
      service: "checkout",
      data: {
        snapshotId: `snap:${slo}:${at}`,
        evaluatedAt: at,
        slos: [
          {
            slo,
            evaluatedAt: at,
            objective: 99.9,
            severity: reading.severity ?? "normal",
            burn:
              reading.severity === undefined || reading.severity === "exhausted"
                ? "normal"
                : reading.severity,
            budget: reading.severity === "exhausted" ? "exhausted" : "ok",
            budgetRemaining: reading.budgetRemaining === undefined ? 0.8 : reading.budgetRemaining,
            errorRatio: 0.0002,
            burnRates: [{ window: "1h", errorRatio: 0.0002, burnRate: reading.burn1h ?? 0.2 }],
            rules: [],
            explanation: "test",
            windows: [],
          },
        ],
      },
    },
    { source: "budget", time: at },
  );
}

async function feed(...evaluations: Envelope<"budget.evaluated">[]) {
  for (const e of evaluations) await publishEvent(harness.bus, e);
  const last = evaluations.at(-1)!;
  // Wait until the policy service has folded the last one in (its verdict record moved on).
  for (let i = 0; i < 200; i++) {
    const gate = await gateNow();
    if (gate !== undefined && (await verdictRecordAt()) >= last.data.evaluatedAt) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("policy did not take the evaluation in");
}

async function verdictRecordAt(): Promise<string> {
  const kv = await harness.bus.js.jetstreamManager();
  const stored = await kv.streams.getMessage(`KV_${qualifiedName(harness.bus.ns, "verdicts")}`, {
    last_by_subj: `$KV.${qualifiedName(harness.bus.ns, "verdicts")}.checkout`,
  });
  const record = stored?.json<{ slos: Record<string, { evaluatedAt: string }> }>();
  return Object.values(record?.slos ?? {}).reduce(
    (max, s) => (s.evaluatedAt > max ? s.evaluatedAt : max),
    "",
  );
}

async function gateNow(): Promise<GateView | undefined> {
  const reply = await requestCommand(harness.bus, "gate.query", { service: "checkout" });
  return reply.ok ? reply.result : undefined;
}

const codes = async () => (await gateNow())?.reasons.map((r) => r.code) ?? ["(no answer)"];

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog });
  replica = await startService(policyService, { env });
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

describe("policy service", () => {
  it("says unknown for a service nobody has evaluated yet (no evidence), then allows it when healthy", async () => {
    expect(await codes()).toEqual(["stale-evidence", "stale-evidence"]);
    expect(await gateNow()).toMatchObject({
      verdict: "unknown",
      allowed: false,
      evidenceAge: null,
    });
    await feed(evaluation("availability"), evaluation("latency"));
    expect(await gateNow()).toMatchObject({
      service: "checkout",
      allowed: true,
      verdict: "pass",
      reasons: [],
    });
    expect((await gateNow())?.evidenceAge).toBeGreaterThan(50);
  });

  it("blocks on each runtime reason, with value and threshold, and clears when the cause clears", async () => {
    await feed(evaluation("availability", { burn1h: 16.2 }));
    expect((await gateNow())?.reasons).toEqual([
      {
        code: "burn-rate-high",
        message: "SLO availability: burn 16.2 > 1 over 1h",
        value: 16.2,
        threshold: 1,
      },
    ]);
    await feed(evaluation("availability"));
    expect(await codes()).toEqual([]);

    await feed(evaluation("latency", { budgetRemaining: 0.1 }));
    expect(await codes()).toEqual(["low-margin"]);
    await feed(evaluation("latency"));
    expect(await codes()).toEqual([]);

    await feed(evaluation("availability", { severity: "no-data", budgetRemaining: null }));
    expect(await codes()).toEqual(["no-data"]);
    await feed(evaluation("availability", { severity: "unknown", budgetRemaining: null }));
    expect(await codes()).toEqual(["unknown"]);
    await feed(evaluation("availability"));
    expect(await codes()).toEqual([]);
  });

  it("freezes on exhaustion; the freeze outlives the budget's recovery until lifted", async () => {
    await feed(evaluation("availability", { severity: "exhausted", budgetRemaining: -0.2 }));
    expect(await codes()).toEqual(["budget-exhausted", "freeze-active"]);
    await feed(evaluation("availability"));
    expect(await codes()).toEqual(["freeze-active"]);
    const lifted = await requestCommand(harness.bus, "freeze.lift", {
      service: "checkout",
      actor: "ana",
      reason: "budget recovered",
    });
    expect(lifted).toMatchObject({ ok: true, result: { lifted: [{ origin: "exhaustion" }] } });
    expect(await codes()).toEqual([]);
  });

  it("keeps a manual freeze across a restart of the policy service", async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const created = await requestCommand(harness.bus, "freeze.create", {
      service: "checkout",
      until,
      reason: "Black Friday",
      actor: "ana",
    });
    expect(created).toMatchObject({
      ok: true,
      result: { service: "checkout", until, origin: "manual" },
    });
    expect(await codes()).toEqual(["freeze-active"]);
    await replica.shutdown("restart");
    replica = await startService(policyService, { env });
    expect(await codes()).toEqual(["freeze-active"]);
    await requestCommand(harness.bus, "freeze.lift", {
      service: "checkout",
      actor: "ana",
      reason: "over",
    });
    expect(await codes()).toEqual([]);
  });

  it("answers not_found for an unknown service, and publishes a verdict only when it changes", async () => {
    expect(await requestCommand(harness.bus, "gate.query", { service: "nobody" })).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
    const stream = qualifiedName(harness.bus.ns, "GOVERNANCE");
    const count = async () => {
      // Only the policy service writes to GOVERNANCE in this test: every message is a verdict.
      const info = await harness.bus.jsm.streams.info(stream);
      return info.state.messages;
    };
    // Evidence from now on: a verdict is never published for a moment before the last one (the
    // freeze lifted just now), so evidence stamped earlier would change nothing.
    clock = Date.now();
    const before = await count();
    await feed(evaluation("availability"), evaluation("latency"), evaluation("availability"));
    expect(await count()).toBe(before); // still allowed: nothing new to say
    await feed(evaluation("availability", { burn1h: 3 }));
    expect(await count()).toBe(before + 1);
    const last = await harness.bus.jsm.streams.getMessage(stream, {
      last_by_subj: `${harness.bus.ns.root}.governance.verdict.checkout`,
    });
    expect(AnyEnvelope.parse(last?.json())).toMatchObject({
      type: "governance.verdict",
      data: { allowed: false },
    });
  });
});
