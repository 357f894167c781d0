import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  activeFreezes,
  exhaustionFreeze,
  gateDeclaration,
  gateVerdict,
  withEvaluation,
} from "@safedeploy/core";
import { DEFAULT_POLICY_SPEC, ServiceDocument } from "@safedeploy/schema";
import type { EventData } from "@safedeploy/schema";
import type { GateInput, SloStatus } from "@safedeploy/core";

const now = "2026-11-24T12:00:00.000Z";

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
    policy: {
      requireCanary: true,
      maxPromotionBurnRate: 1,
      noData: "block",
      promotionBurnWindow: "1h",
    },
    slos: [healthy()],
    freezes: [],
    now,
    ...overrides,
  };
}

const codes = (verdict: ReturnType<typeof gateVerdict>) => verdict.reasons.map((r) => r.code);

describe("gateVerdict", () => {
  it("allows a healthy, well-declared service", () => {
    expect(gateVerdict(input())).toEqual({ allowed: true, reasons: [] });
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
    expect(codes(gateVerdict(input({ slos: [] })))).toEqual(["no-data"]);
    const allow = {
      requireCanary: true,
      maxPromotionBurnRate: 1,
      noData: "allow" as const,
      promotionBurnWindow: "1h",
    };
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
    expect(gateVerdict(input({ freezes: [freeze], now: "2026-11-24T13:00:00.000Z" })).allowed).toBe(
      true,
    );
    expect(gateVerdict(input({ freezes: [freeze], now: "2026-11-24T10:59:59.000Z" })).allowed).toBe(
      true,
    );
  });

  it("blocks structural violations: no SLO, no rollback, no canary where the policy requires one", () => {
    const verdict = gateVerdict(
      input({
        service: { sloNames: [], rollbackPath: null, strategy: "rolling", safetyMargin: 0.25 },
        slos: [],
      }),
    );
    expect(codes(verdict)).toEqual(["no-slos", "no-rollback", "canary-required"]);
    const relaxed = {
      requireCanary: false,
      maxPromotionBurnRate: 1,
      noData: "block" as const,
      promotionBurnWindow: "1h",
    };
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

describe("freezes", () => {
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
    expect(gateDeclaration(spec, DEFAULT_POLICY_SPEC)).toEqual({
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
      },
    });
  });

  it("folds in a newer evaluation of an SLO and refuses an older or equal one", () => {
    const evaluation = (
      evaluatedAt: string,
      severity: SloStatus["severity"],
    ): EventData<"budget.evaluated"> => ({
      slo: "availability",
      snapshotId: `snap-${evaluatedAt}`,
      evaluatedAt,
      objective: 99,
      severity,
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
});
