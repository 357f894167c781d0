import { describe, expect, it } from "vitest";
import {
  DEFAULT_BURN_RULES,
  changedDecisions,
  evaluateSlo,
  firstDifference,
  replayService,
} from "@safedeploy/core";
import type { ReplayPolicy } from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, EventData, EventType, SliWindow } from "@safedeploy/schema";

const t = (second: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, second)).toISOString();
const policy: ReplayPolicy = {
  burnRules: DEFAULT_BURN_RULES,
  incident: { openIncidentOn: ["fast-burn", "exhausted"], resolveAfterMs: 2_000 },
  gate: {
    service: {
      sloNames: ["availability"],
      rollbackPath: "envs/prod/checkout",
      strategy: "canary",
      safetyMargin: 0.25,
    },
    policy: {
      requireCanary: true,
      maxPromotionBurnRate: 1,
      noData: "block",
      promotionBurnWindow: "1h",
    },
  },
};

function event<T extends EventType>(type: T, id: string, data: EventData<T>): Envelope<T> {
  return createEnvelope({ type, id, service: "checkout", data }, { source: "test", time: t(0) });
}

/** A snapshot with `errors` of 1000 failing in the short windows, and the evaluation of it. */
function measured(second: number, errors: number, severityOverride?: "slow-burn"): Envelope[] {
  const windows: SliWindow[] = ["5m", "30m", "1h", "6h", "3d", "30d"].map((window) => ({
    window,
    errorQuery: "e",
    totalQuery: "t",
    errors: window === "3d" || window === "30d" ? 0.5 : errors,
    total: 1000,
    status: "ok",
  }));
  const snapshotId = messageId("metrics.snapshot", "checkout", t(second));
  const evaluation = evaluateSlo({ objective: 99.9, window: "30d", minEvents: 100 }, windows);
  return [
    event("metrics.snapshot", snapshotId, {
      slo: "availability",
      objective: 99.9,
      sloWindow: "30d",
      minEvents: 100,
      mode: "direct",
      evaluatedAt: t(second),
      windows,
    }),
    event("budget.evaluated", messageId("budget.evaluated", snapshotId), {
      slo: "availability",
      snapshotId,
      evaluatedAt: t(second),
      objective: 99.9,
      ...evaluation,
      ...(severityOverride === undefined ? {} : { severity: severityOverride }),
      windows,
    }),
  ];
}

const verdict = (second: number, codes: string[], causeId = "e") =>
  event("governance.verdict", messageId("governance.verdict", "checkout", t(second)), {
    allowed: codes.length === 0,
    reasons: codes.map((code) => ({ code, message: code, value: null, threshold: null })),
    evaluatedAt: t(second),
    causeId,
  });

/** What the services recorded for: healthy, a fast burn, a freeze, a mitigation, recovery. */
function history(): Envelope[] {
  return [
    verdict(0, ["no-data"], "policy.start:checkout:t0"),
    ...measured(1, 0),
    verdict(1, []),
    ...measured(2, 100),
    event("incidents.opened", "incidents.opened:INC-1", {
      incidentId: "INC-1",
      origin: "slo",
      severity: "fast-burn",
      class: "P1",
      slo: "availability",
      openedAt: t(2),
      causeId: "x",
      reason: "availability is fast-burn",
    }),
    verdict(2, ["burn-rate-high"]),
    event("governance.freeze-opened", "governance.freeze-opened:f1", {
      freezeId: "f1",
      from: t(3),
      until: t(60),
      reason: "incident",
      actor: "ana",
      origin: "manual",
    }),
    event("incidents.transitioned", "incidents.transitioned:INC-1:mitigated", {
      incidentId: "INC-1",
      from: "detected",
      to: "mitigated",
      at: t(4),
      actor: "system",
      reason: "rollback executed",
    }),
    ...measured(5, 0),
    verdict(5, ["freeze-active"]),
    event("governance.freeze-lifted", "governance.freeze-lifted:f1", {
      freezeId: "f1",
      at: t(6),
      actor: "ana",
      reason: "over",
    }),
    ...measured(8, 0),
    event("incidents.transitioned", "incidents.transitioned:INC-1:resolved", {
      incidentId: "INC-1",
      from: "mitigated",
      to: "resolved",
      at: t(8),
      actor: "system",
      reason: "every SLO normal",
    }),
    verdict(8, []),
  ];
}

describe("replayService", () => {
  it("re-derives exactly what the services recorded", () => {
    const result = replayService(history(), policy);
    expect(firstDifference(result)).toBeNull();
    expect(result.derived.map((d) => `${d.kind}: ${d.summary}`)).toEqual([
      expect.stringMatching(/^budget: availability: normal/),
      expect.stringMatching(/^budget: availability: fast-burn/),
      expect.stringMatching(/^budget: availability: normal/),
      expect.stringMatching(/^budget: availability: normal/),
      "verdict: allowed",
      "verdict: blocked: burn-rate-high",
      "incident: opened slo incident on availability: fast-burn P1",
      "verdict: blocked: freeze-active",
      "verdict: allowed",
      "incident: resolved by the system",
    ]);
  });

  it("names the first recorded decision it cannot reproduce", () => {
    const tampered = history().map((message) =>
      message.type === "budget.evaluated" && message.data.evaluatedAt === t(5)
        ? { ...message, data: { ...message.data, severity: "slow-burn" as const } }
        : message,
    );
    expect(firstDifference(replayService(tampered, policy))).toMatchObject({
      index: 2,
      recorded: { kind: "budget", summary: expect.stringContaining("slow-burn") as string },
      derived: { kind: "budget", summary: expect.stringContaining("normal") as string },
    });
  });

  it("leaves the warm-up out of the comparison", () => {
    const all = history();
    const result = replayService(all, policy, all.length - 4); // from the last snapshot on
    expect(result.derived.map((d) => d.summary)).toEqual([
      expect.stringMatching(/^availability: normal/),
      "allowed",
      "resolved by the system",
    ]);
    expect(firstDifference(result)).toBeNull();
  });

  it("what-if: a policy that opens incidents only on exhaustion changes the incident decisions", () => {
    const lax: ReplayPolicy = {
      ...policy,
      incident: { ...policy.incident, openIncidentOn: ["exhausted"] },
    };
    const changes = changedDecisions(
      replayService(history(), policy).derived,
      replayService(history(), lax).derived,
    );
    expect(changes.map((c) => [c.before?.summary ?? null, c.after?.summary ?? null])).toEqual([
      ["opened slo incident on availability: fast-burn P1", null],
      ["resolved by the system", null],
    ]);
  });
});
