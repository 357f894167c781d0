import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLOCK_SKEW_MS,
  activeFreezes,
  activeGuards,
  decideExhaustionFreeze,
  exhaustionFreeze,
  gateDeclaration,
  gateVerdict,
  verdictOf,
  withEvaluation,
  withEvaluations,
} from "@safedeploy/core";
import { DEFAULT_POLICY_SPEC, ServiceDocument } from "@safedeploy/schema";
import type { EvaluatedSlo } from "@safedeploy/schema";
import type { GateInput, ReleaseGuard, SloStatus } from "@safedeploy/core";

const now = "2026-11-24T12:00:00.000Z";
const STALE_AFTER_MS = 90_000;
const POLICY = {
  requireCanary: true,
  maxPromotionBurnRate: 1,
  noData: "block" as const,
  promotionBurnWindow: "1h",
  staleAfterMs: STALE_AFTER_MS,
};
const ago = (ms: number) => new Date(Date.parse(now) - ms).toISOString();

function healthy(overrides: Partial<SloStatus> = {}): SloStatus {
  return {
    slo: "availability",
    severity: "normal",
    budgetRemaining: 0.8,
    burnRates: [
      { window: "5m", burnRate: 0.2 },
      { window: "1h", burnRate: 0.5 },
    ],
    evaluatedAt: now,
    ...overrides,
  };
}

function input(overrides: Partial<GateInput> = {}): GateInput {
  return {
    service: {
      sloNames: ["availability"],
      rollbackPath: "envs/prod/checkout",
      strategy: "canary",
      safetyMargin: 0.25,
    },
    policy: POLICY,
    slos: [healthy()],
    freezes: [],
    now,
    ...overrides,
  };
}

const codes = (verdict: ReturnType<typeof gateVerdict>) => verdict.reasons.map((r) => r.code);

describe("gateVerdict", () => {
  it("allows a healthy, well-declared service", () => {
    expect(gateVerdict(input())).toEqual({
      allowed: true,
      verdict: "pass",
      reasons: [],
      evidenceAge: 0,
      evidence: [{ slo: "availability", evaluatedAt: now }],
    });
  });

  it("blocks an exhausted budget, naming value and threshold", () => {
    const verdict = gateVerdict(
      input({ slos: [healthy({ severity: "exhausted", budgetRemaining: -0.3 })] }),
    );
    expect(verdict.allowed).toBe(false);
    expect(verdict.reasons).toEqual([
      {
        code: "budget-exhausted",
        message: "SLO availability: error budget exhausted (-30% left)",
        value: -0.3,
        threshold: 0,
      },
    ]);
  });

  it("blocks a burn above maxPromotionBurnRate over the promotion window", () => {
    const verdict = gateVerdict(
      input({ slos: [healthy({ burnRates: [{ window: "1h", burnRate: 16.2 }] })] }),
    );
    expect(verdict.reasons).toEqual([
      {
        code: "burn-rate-high",
        message: "SLO availability: burn 16.2 > 1 over 1h",
        value: 16.2,
        threshold: 1,
      },
    ]);
  });

  it("blocks when the budget left is under the safety margin", () => {
    const verdict = gateVerdict(input({ slos: [healthy({ budgetRemaining: 0.1 })] }));
    expect(verdict.reasons).toMatchObject([{ code: "low-margin", value: 0.1, threshold: 0.25 }]);
    expect(verdict.reasons[0]?.message).toBe(
      "SLO availability: 10% of the budget left < safety margin 25%",
    );
  });

  it("blocks no-data, unknown and never-evaluated SLOs unless the policy allows them", () => {
    expect(
      codes(
        gateVerdict(input({ slos: [healthy({ severity: "no-data", budgetRemaining: null })] })),
      ),
    ).toEqual(["no-data"]);
    expect(
      codes(
        gateVerdict(input({ slos: [healthy({ severity: "unknown", budgetRemaining: null })] })),
      ),
    ).toEqual(["unknown"]);
    // Never evaluated: no evidence at all, which is stale evidence.
    const blind = gateVerdict(input({ slos: [] }));
    expect(codes(blind)).toEqual(["stale-evidence"]);
    expect(blind).toMatchObject({ verdict: "unknown", allowed: false, evidenceAge: null });
    const allow = { ...POLICY, noData: "allow" as const };
    expect(gateVerdict(input({ policy: allow, slos: [] })).allowed).toBe(true);
  });

  it("blocks during an active freeze, and not before or after it", () => {
    const freeze = {
      id: "F-1",
      from: "2026-11-24T11:00:00.000Z",
      until: "2026-11-24T13:00:00.000Z",
      reason: "Black Friday",
      origin: "manual" as const,
    };
    expect(gateVerdict(input({ freezes: [freeze] })).reasons).toEqual([
      {
        code: "freeze-active",
        message: "manual freeze until 2026-11-24T13:00:00.000Z: Black Friday",
        value: "F-1",
        threshold: "2026-11-24T13:00:00.000Z",
      },
    ]);
    const at = (time: string) =>
      input({ freezes: [freeze], now: time, slos: [healthy({ evaluatedAt: time })] });
    expect(gateVerdict(at("2026-11-24T13:00:00.000Z")).allowed).toBe(true);
    expect(gateVerdict(at("2026-11-24T10:59:59.000Z")).allowed).toBe(true);
  });

  it("blocks structural violations: no SLO, no rollback, no canary where the policy requires one", () => {
    const verdict = gateVerdict(
      input({
        service: { sloNames: [], rollbackPath: null, strategy: "rolling", safetyMargin: 0.25 },
        slos: [],
      }),
    );
    expect(codes(verdict)).toEqual(["no-slos", "no-rollback", "canary-required"]);
    const relaxed = { ...POLICY, requireCanary: false };
    expect(
      gateVerdict(
        input({
          policy: relaxed,
          service: {
            sloNames: ["availability"],
            rollbackPath: "p",
            strategy: "rolling",
            safetyMargin: 0.25,
          },
        }),
      ).allowed,
    ).toBe(true);
  });

  it("is allowed exactly when no reason is given, and a hotter burn never unblocks", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        (a, b) => {
          const verdictAt = (burn: number) =>
            gateVerdict(
              input({ slos: [healthy({ burnRates: [{ window: "1h", burnRate: burn }] })] }),
            );
          const [low, high] = a <= b ? [a, b] : [b, a];
          for (const verdict of [verdictAt(low), verdictAt(high)])
            expect(verdict.allowed).toBe(verdict.reasons.length === 0);
          if (!verdictAt(low).allowed) expect(verdictAt(high).allowed).toBe(false);
        },
      ),
    );
  });
});

describe("evidence freshness", () => {
  it("says unknown, naming age and threshold, once the newest evidence is older than staleAfter", () => {
    const fresh = gateVerdict(input({ slos: [healthy({ evaluatedAt: ago(STALE_AFTER_MS) })] }));
    expect(fresh).toMatchObject({ verdict: "pass", evidenceAge: 90 });
    const stale = gateVerdict(
      input({ slos: [healthy({ evaluatedAt: ago(STALE_AFTER_MS + 5_000) })] }),
    );
    expect(stale).toMatchObject({ allowed: false, verdict: "unknown", evidenceAge: 95 });
    expect(stale.reasons).toEqual([
      {
        code: "stale-evidence",
        message:
          "SLO availability: the newest evidence is 95 s old > staleAfter 1m30s (is the collector or Prometheus down?); the policy blocks on stale evidence",
        value: 95,
        threshold: 90,
      },
    ]);
  });

  it("distrusts evidence dated in the future beyond the clock-skew allowance", () => {
    const skewed = (ms: number) => new Date(Date.parse(now) + ms).toISOString();
    expect(
      gateVerdict(input({ slos: [healthy({ evaluatedAt: skewed(CLOCK_SKEW_MS) })] })).verdict,
    ).toBe("pass");
    const future = gateVerdict(
      input({ slos: [healthy({ evaluatedAt: skewed(CLOCK_SKEW_MS + 1) })] }),
    );
    expect(future.verdict).toBe("unknown");
    expect(future.reasons[0]?.message).toMatch(/dated 10 s in the future/);
  });

  it("judges each SLO: one stale SLO is enough, the age is the oldest's", () => {
    const verdict = gateVerdict(
      input({
        service: { ...input().service, sloNames: ["availability", "latency"] },
        slos: [healthy(), healthy({ slo: "latency", evaluatedAt: ago(200_000) })],
      }),
    );
    expect(verdict).toMatchObject({ verdict: "unknown", evidenceAge: 200 });
    expect(verdict.reasons.map((r) => r.message)).toEqual([
      expect.stringMatching(/^SLO latency: the newest evidence is 200 s old/),
    ]);
  });

  it("keeps what stale evidence showed: a spent budget still blocks", () => {
    const verdict = gateVerdict(
      input({
        slos: [
          healthy({ severity: "exhausted", budgetRemaining: -0.1, evaluatedAt: ago(600_000) }),
        ],
      }),
    );
    expect(verdict.verdict).toBe("block");
    expect(codes(verdict)).toEqual(["stale-evidence", "budget-exhausted"]);
  });

  it("never passes on evidence older than staleAfter, whatever it says (property)", () => {
    const status = fc.record({
      severity: fc.constantFrom(
        "normal" as const,
        "slow-burn" as const,
        "fast-burn" as const,
        "exhausted" as const,
        "no-data" as const,
        "unknown" as const,
      ),
      budgetRemaining: fc.option(fc.double({ min: -1, max: 1, noNaN: true })),
      burn: fc.double({ min: 0, max: 30, noNaN: true }),
      ageMs: fc.integer({ min: -60_000, max: 3_600_000 }),
    });
    fc.assert(
      fc.property(
        fc.array(status, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1_000, max: 600_000 }),
        (statuses, staleAfterMs) => {
          const slos = statuses.map((s, i) =>
            healthy({
              slo: `slo-${i}`,
              severity: s.severity,
              budgetRemaining: s.budgetRemaining,
              burnRates: [{ window: "1h", burnRate: s.burn }],
              evaluatedAt: ago(s.ageMs),
            }),
          );
          const verdict = gateVerdict(
            input({
              service: { ...input().service, sloNames: slos.map((s) => s.slo) },
              policy: { ...POLICY, staleAfterMs },
              slos,
            }),
          );
          const tooOld = statuses.some((s) => s.ageMs > staleAfterMs);
          const tooNew = statuses.some((s) => -s.ageMs > CLOCK_SKEW_MS);
          if (tooOld || tooNew) {
            expect(verdict.verdict).not.toBe("pass");
            expect(verdict.allowed).toBe(false);
            expect(codes(verdict)).toContain("stale-evidence");
          }
          expect(verdict.allowed).toBe(verdict.verdict === "pass");
        },
      ),
    );
  });
});

describe("three-valued verdict", () => {
  it("is pass with no reason, unknown when the gate only cannot see, block otherwise", () => {
    const reason = (code: string) => ({ code, message: code, value: null, threshold: null });
    expect(verdictOf([])).toBe("pass");
    expect(verdictOf([reason("no-data"), reason("stale-evidence"), reason("unknown")])).toBe(
      "unknown",
    );
    expect(verdictOf([reason("no-data"), reason("freeze-active")])).toBe("block");
    expect(verdictOf([reason("burn-rate-high")])).toBe("block");
  });

  it("blocks no-data when a freeze also holds, and says unknown for no-data alone", () => {
    const freeze = {
      id: "F-1",
      from: ago(60_000),
      until: ago(-60_000),
      reason: "release freeze",
      origin: "manual" as const,
    };
    const noData = [healthy({ severity: "no-data", budgetRemaining: null })];
    expect(gateVerdict(input({ slos: noData })).verdict).toBe("unknown");
    expect(gateVerdict(input({ slos: noData, freezes: [freeze] })).verdict).toBe("block");
  });
});

describe("release guards", () => {
  const guard: ReleaseGuard = {
    id: "guard:checkout:TRN-1:s2",
    train: "shop-42",
    trainId: "TRN-1",
    step: 1,
    reason: "fatal check http://checkout/healthz: $.status was degraded",
    at: ago(60_000),
    clearedAt: null,
  };

  it("blocks from the failure until cleared, naming train, step and check", () => {
    const verdict = gateVerdict(input({ guards: [guard] }));
    expect(verdict.verdict).toBe("block");
    expect(verdict.reasons).toEqual([
      {
        code: "release-guard-failed",
        message:
          "release train shop-42 (TRN-1) step 2 failed its guard: fatal check http://checkout/healthz: $.status was degraded; cleared when its revert is executed or an approver clears it",
        value: "TRN-1",
        threshold: null,
      },
    ]);
    const before = ago(120_000);
    expect(
      gateVerdict(input({ guards: [guard], now: before, slos: [healthy({ evaluatedAt: before })] }))
        .verdict,
    ).toBe("pass");
    const cleared = { ...guard, clearedAt: ago(10_000) };
    expect(gateVerdict(input({ guards: [cleared] })).verdict).toBe("pass");
    expect(activeGuards([cleared], ago(30_000))).toEqual([cleared]);
  });
});

describe("freezes", () => {
  it("opens one exhaustion freeze per spent budget, not while one is in force", () => {
    const spent = {
      service: "checkout",
      evaluatedAt: now,
      slos: [{ severity: "normal" as const }, { severity: "exhausted" as const }],
    };
    const first = decideExhaustionFreeze([], spent, 3_600_000, (f) => f);
    expect(first.freezes).toEqual([exhaustionFreeze("checkout", now, 3_600_000)]);
    expect(first.inForce).toEqual(first.freezes?.[0]);
    const again = decideExhaustionFreeze(
      first.freezes ?? [],
      { ...spent, evaluatedAt: ago(-60_000) },
      3_600_000,
      (f) => f,
    );
    expect(again).toEqual({ freezes: undefined, inForce: first.inForce });
    const after = decideExhaustionFreeze(
      first.freezes ?? [],
      { ...spent, evaluatedAt: ago(-3_600_000) },
      3_600_000,
      (f) => f,
    );
    expect(after.freezes).toHaveLength(2);
    expect(
      decideExhaustionFreeze([], { ...spent, slos: [{ severity: "fast-burn" }] }, 1, (f) => f),
    ).toEqual({
      freezes: undefined,
      inForce: undefined,
    });
  });

  it("opens an exhaustion freeze for the policy's duration, active only inside it", () => {
    const freeze = exhaustionFreeze("checkout", "2026-11-24T12:00:00.000Z", 24 * 3_600_000);
    expect(freeze).toEqual({
      id: "freeze:checkout:exhaustion:2026-11-24T12:00:00.000Z",
      from: "2026-11-24T12:00:00.000Z",
      until: "2026-11-25T12:00:00.000Z",
      reason: "error budget exhausted",
      origin: "exhaustion",
    });
    expect(activeFreezes([freeze], "2026-11-25T11:59:59.000Z")).toEqual([freeze]);
    expect(activeFreezes([freeze], "2026-11-25T12:00:00.000Z")).toEqual([]);
  });
});

describe("gateDeclaration and withEvaluation", () => {
  it("takes the gate's view of a service and its policy", () => {
    const spec = ServiceDocument.parse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Service",
      metadata: { name: "checkout", owner: "team" },
      spec: {
        slos: [
          {
            name: "availability",
            objective: 99,
            sli: { errorQuery: "e[{{.window}}]", totalQuery: "t[{{.window}}]" },
          },
        ],
        rollback: { strategy: "git-revert", path: "envs/prod/checkout" },
        deployment: { strategy: "rolling" },
      },
    }).spec;
    expect(gateDeclaration(spec, DEFAULT_POLICY_SPEC, STALE_AFTER_MS)).toEqual({
      service: {
        sloNames: ["availability"],
        rollbackPath: "envs/prod/checkout",
        strategy: "rolling",
        safetyMargin: 0.25,
      },
      policy: {
        requireCanary: DEFAULT_POLICY_SPEC.requireCanary,
        maxPromotionBurnRate: DEFAULT_POLICY_SPEC.maxPromotionBurnRate,
        noData: DEFAULT_POLICY_SPEC.noData,
        promotionBurnWindow: DEFAULT_POLICY_SPEC.burnRates[0]?.long,
        staleAfterMs: STALE_AFTER_MS,
      },
    });
  });

  it("folds in a newer evaluation of an SLO and refuses an older or equal one", () => {
    const evaluation = (evaluatedAt: string, severity: SloStatus["severity"]): EvaluatedSlo => ({
      slo: "availability",
      evaluatedAt,
      objective: 99,
      severity,
      burn: severity === "exhausted" ? "normal" : severity,
      budget: "ok",
      budgetRemaining: 0.5,
      errorRatio: 0.001,
      burnRates: [{ window: "1h", errorRatio: 0.001, burnRate: 0.1 }],
      rules: [],
      explanation: "",
      windows: [],
    });
    const first = withEvaluation({}, evaluation(now, "normal"));
    expect(first?.availability).toMatchObject({ severity: "normal", evaluatedAt: now });
    expect(withEvaluation(first!, evaluation(now, "fast-burn"))).toBeUndefined();
    expect(
      withEvaluation(first!, evaluation("2026-11-24T11:00:00.000Z", "fast-burn")),
    ).toBeUndefined();
    const later = withEvaluation(first!, evaluation("2026-11-24T12:01:00.000Z", "fast-burn"));
    expect(later?.availability?.severity).toBe("fast-burn");
  });

  it("folds every SLO of a service's evaluation, keeping what is newer of each", () => {
    const slo = (name: string, evaluatedAt: string, severity: SloStatus["severity"]) => ({
      slo: name,
      evaluatedAt,
      objective: 99,
      severity,
      burn: severity === "exhausted" ? ("normal" as const) : severity,
      budget: "ok" as const,
      budgetRemaining: 0.5,
      errorRatio: 0.001,
      burnRates: [],
      rules: [],
      explanation: "",
      windows: [],
    });
    const later = "2026-11-24T12:01:00.000Z";
    const known = withEvaluations({}, [slo("availability", later, "normal")])!;
    const folded = withEvaluations(known, [
      slo("availability", now, "fast-burn"), // older than what is known: ignored
      slo("latency", now, "slow-burn"),
    ]);
    expect(folded?.availability?.severity).toBe("normal");
    expect(folded?.latency?.severity).toBe("slow-burn");
    expect(withEvaluations(folded!, [slo("availability", now, "fast-burn")])).toBeUndefined();
    expect(withEvaluations(folded!, [])).toBeUndefined();
  });
});
