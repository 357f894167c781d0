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
      staleAfterMs: 30_000,
    },
  },
  freezeOnExhaustionMs: 3_600_000,
};

function event<T extends EventType>(
  type: T,
  id: string,
  data: EventData<T>,
  time = t(0),
): Envelope<T> {
  return createEnvelope({ type, id, service: "checkout", data }, { source: "test", time });
}

/**
 * A snapshot with `errors` of 1000 failing in the short windows (and `longErrors` over 3d and
 * 30d: 2 spends the budget), and the evaluation of it.
 */
function measured(
  second: number,
  errors: number,
  severityOverride?: "slow-burn",
  longErrors = 0.5,
): Envelope[] {
  const windows: SliWindow[] = ["5m", "30m", "1h", "6h", "3d", "30d"].map((window) => ({
    window,
    errorQuery: "e",
    totalQuery: "t",
    errors: window === "3d" || window === "30d" ? longErrors : errors,
    total: 1000,
    status: "ok",
  }));
  const snapshotId = messageId("metrics.snapshot", "checkout", t(second));
  const evaluation = evaluateSlo(
    { objective: 99.9, window: "30d", minEvents: 100, safetyMargin: 0.25 },
    windows,
  );
  return [
    event("metrics.snapshot", snapshotId, {
      evaluatedAt: t(second),
      slos: [
        {
          slo: "availability",
          objective: 99.9,
          sloWindow: "30d",
          minEvents: 100,
          mode: "direct",
          evaluatedAt: t(second),
          windows,
        },
      ],
    }),
    event("budget.evaluated", messageId("budget.evaluated", snapshotId), {
      snapshotId,
      evaluatedAt: t(second),
      slos: [
        {
          slo: "availability",
          evaluatedAt: t(second),
          objective: 99.9,
          ...evaluation,
          ...(severityOverride === undefined ? {} : { severity: severityOverride }),
          windows,
        },
      ],
    }),
  ];
}

const BLIND = ["no-data", "unknown", "stale-evidence"];
const verdict = (
  second: number,
  codes: string[],
  causeId = "e",
  evidence: { slo: string; evaluatedAt: string }[] = [],
) =>
  event("governance.verdict", messageId("governance.verdict", "checkout", t(second)), {
    allowed: codes.length === 0,
    verdict:
      codes.length === 0 ? "pass" : codes.every((c) => BLIND.includes(c)) ? "unknown" : "block",
    reasons: codes.map((code) => ({ code, message: code, value: null, threshold: null })),
    evaluatedAt: t(second),
    causeId,
    evidenceAge: null,
    evidence,
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
    event(
      "governance.freeze-opened",
      "governance.freeze-opened:f1",
      {
        freezeId: "f1",
        from: t(3),
        until: t(60),
        reason: "incident",
        actor: "ana",
        origin: "manual",
      },
      t(3),
    ),
    verdict(3, ["burn-rate-high", "freeze-active"], "f1"),
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
    event(
      "governance.freeze-lifted",
      "governance.freeze-lifted:f1",
      { freezeId: "f1", at: t(6), actor: "ana", reason: "over" },
      t(6),
    ),
    verdict(6, [], "freeze-lifted:checkout"),
    ...measured(8, 0),
    event("incidents.transitioned", "incidents.transitioned:INC-1:resolved", {
      incidentId: "INC-1",
      from: "mitigated",
      to: "resolved",
      at: t(8),
      actor: "system",
      reason: "every SLO normal",
    }),
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
      "verdict: pass",
      "verdict: block: burn-rate-high",
      "incident: opened slo incident on availability: fast-burn P1",
      "verdict: block: burn-rate-high, freeze-active",
      "verdict: block: freeze-active",
      "verdict: pass",
      "incident: resolved by the system",
    ]);
  });

  it("names the first recorded decision it cannot reproduce", () => {
    const tampered = history().map((message) =>
      message.type === "budget.evaluated" && message.data.evaluatedAt === t(5)
        ? {
            ...message,
            data: {
              ...message.data,
              slos: message.data.slos.map((slo) => ({ ...slo, severity: "slow-burn" as const })),
            },
          }
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
    const result = replayService(all, policy, all.length - 3); // from the last snapshot on
    expect(result.derived.map((d) => d.summary)).toEqual([
      expect.stringMatching(/^availability: normal/),
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

  it("derives the exhaustion freeze before the verdict, as the policy service does", () => {
    const spent = measured(10, 100, undefined, 2);
    const evaluation = spent[1] as Envelope<"budget.evaluated">;
    expect(evaluation.data.slos[0]).toMatchObject({ severity: "exhausted", burn: "fast-burn" });
    const freezeId = `freeze:checkout:exhaustion:${t(10)}`;
    const recorded: Envelope[] = [
      ...measured(9, 0),
      verdict(9, []),
      ...spent,
      event(
        "governance.freeze-opened",
        `governance.freeze-opened:${freezeId}`,
        {
          freezeId,
          from: t(10),
          until: new Date(Date.parse(t(10)) + 3_600_000).toISOString(),
          reason: "error budget exhausted",
          actor: "system",
          origin: "exhaustion",
        },
        t(10),
      ),
      verdict(10, ["budget-exhausted", "burn-rate-high", "freeze-active"]),
      event("incidents.opened", "incidents.opened:INC-9", {
        incidentId: "INC-9",
        origin: "slo",
        severity: "exhausted",
        class: "P0",
        slo: "availability",
        openedAt: t(10),
        causeId: evaluation.id,
        reason: "availability is exhausted",
      }),
    ];
    const result = replayService(recorded, policy);
    expect(firstDifference(result)).toBeNull();
    expect(result.derived.filter((d) => d.kind !== "budget").map((d) => d.summary)).toEqual([
      "pass",
      `exhaustion freeze from ${t(10)} until ${new Date(Date.parse(t(10)) + 3_600_000).toISOString()}`,
      "block: budget-exhausted, burn-rate-high, freeze-active",
      "opened slo incident on availability: exhausted P0",
    ]);
  });

  it("replays the policy service's clock: evidence that went stale, on the evidence it judged", () => {
    const recorded: Envelope[] = [
      ...measured(1, 0),
      verdict(1, []),
      // The next evaluation is stored just before a tick that had not seen it yet: the tick finds
      // the evidence of second 1 older than staleAfter (30 s). The evaluation, judged after the
      // tick but for an earlier moment, publishes nothing (a verdict never goes back); the next
      // one does.
      ...measured(31, 0),
      verdict(32, ["stale-evidence"], "policy.clock:checkout:t32", [
        { slo: "availability", evaluatedAt: t(1) },
      ]),
      ...measured(35, 0),
      verdict(35, []),
      // Then nothing for a minute: the clock finds it stale again.
      verdict(66, ["stale-evidence"], "policy.clock:checkout:t66", [
        { slo: "availability", evaluatedAt: t(35) },
      ]),
      ...measured(67, 0),
      verdict(67, []),
    ];
    expect(firstDifference(replayService(recorded, policy))).toBeNull();
    // Under a laxer staleAfter the clock would have found nothing stale.
    const lax: ReplayPolicy = {
      ...policy,
      gate: { ...policy.gate, policy: { ...policy.gate.policy, staleAfterMs: 120_000 } },
    };
    const changes = changedDecisions(
      replayService(recorded, policy).derived,
      replayService(recorded, lax).derived,
    );
    expect(changes.map((c) => [c.before?.summary ?? null, c.after?.summary ?? null])).toEqual([
      ["unknown: stale-evidence", null],
      ["pass", null],
      ["unknown: stale-evidence", null],
      ["pass", null],
    ]);
  });

  it("folds failed and cleared release guards into the verdicts", () => {
    const guard = {
      guardId: "guard:checkout:TRN-1:s1",
      train: "t",
      trainId: "TRN-1",
      step: 0,
      reason: "fatal check failed",
      evidence: ["step 1 checkout: http://x (fatal): degraded"],
      at: t(3),
    };
    const recorded: Envelope[] = [
      ...measured(1, 0),
      verdict(1, []),
      event("governance.guard-failed", "governance.guard-failed:g", guard, t(3)),
      verdict(3, ["release-guard-failed"], guard.guardId),
      ...measured(4, 0),
      event(
        "governance.guard-cleared",
        "governance.guard-cleared:g",
        { guardId: guard.guardId, at: t(5), actor: "ana", reason: "triaged", by: "person" },
        t(5),
      ),
      verdict(5, [], "guard-cleared"),
    ];
    const result = replayService(recorded, policy);
    expect(firstDifference(result)).toBeNull();
    expect(result.derived.filter((d) => d.kind === "verdict").map((d) => d.summary)).toEqual([
      "pass",
      "block: release-guard-failed",
      "pass",
    ]);
  });
});
