import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_BURN_RULES,
  SEVERITY_RANK,
  budgetRemaining,
  budgetStatus,
  burnRate,
  errorRatio,
  evaluateSlo,
  eventsInWindow,
  requiredWindows,
} from "@safedeploy/core";
import type { SloTarget } from "@safedeploy/core";
import type { SliWindow } from "@safedeploy/schema";

const target: SloTarget = { objective: 99.9, window: "30d", minEvents: 100, safetyMargin: 0.25 };
const windows = requiredWindows(target, DEFAULT_BURN_RULES);

/** Every window at the same per-second rates. */
function steady(errorsPerSecond: number, totalPerSecond: number): SliWindow[] {
  return windows.map((window) => ({
    window,
    errorQuery: `errors[${window}]`,
    totalQuery: `total[${window}]`,
    errors: errorsPerSecond,
    total: totalPerSecond,
    status: totalPerSecond > 0 ? "ok" : "no-data",
  }));
}

function withWindow(samples: SliWindow[], window: string, patch: Partial<SliWindow>): SliWindow[] {
  return samples.map((sample) => (sample.window === window ? { ...sample, ...patch } : sample));
}

describe("budget arithmetic", () => {
  it("computes ratio, burn rate and remaining budget", () => {
    expect(errorRatio(1, 100)).toBe(0.01);
    expect(burnRate(0.01, 99.9)).toBeCloseTo(10);
    expect(budgetRemaining(0.0005, 99.9)).toBeCloseTo(0.5);
    expect(budgetRemaining(0.002, 99.9)).toBeCloseTo(-1); // overspent: negative
    expect(eventsInWindow(2, "5m")).toBe(600);
  });

  it("treats no traffic, NaN, Inf and missing values as no ratio", () => {
    expect(errorRatio(0, 0)).toBeNull();
    expect(errorRatio(Number.NaN, 10)).toBeNull();
    expect(errorRatio(1, Number.POSITIVE_INFINITY)).toBeNull();
    expect(errorRatio(null, 10)).toBeNull();
    expect(errorRatio(5, null)).toBeNull();
    expect(errorRatio(-1, 10)).toBeNull();
    expect(errorRatio(20, 10)).toBe(1); // counter resets can overshoot: clamp
  });

  it("lists the windows an SLO needs, shortest first", () => {
    expect(windows).toEqual(["5m", "30m", "1h", "6h", "3d", "30d"]);
  });
});

describe("evaluateSlo", () => {
  it("is normal when errors are within budget", () => {
    const result = evaluateSlo(target, steady(0.0001, 10));
    expect(result.severity).toBe("normal");
    expect(result.budgetRemaining).toBeCloseTo(0.99);
    expect(result.explanation).toMatch(/within budget/);
  });

  it("is fast-burn at 100% errors over short windows, and says which rule fired", () => {
    let samples = steady(0.0001, 10);
    for (const window of ["5m", "30m", "1h", "6h"])
      samples = withWindow(samples, window, { errors: 10 });
    const result = evaluateSlo(target, samples);
    expect(result.severity).toBe("fast-burn");
    expect(result.explanation).toBe("fast-burn: burn 1000 > 14.4 over 1h and 1000 > 14.4 over 5m");
    expect(result.rules[0]?.fired).toBe(true);
    expect(result.rules[0]?.longBurnRate).toBeCloseTo(1000);
    expect(result.rules[0]?.shortBurnRate).toBeCloseTo(1000);
  });

  it("needs both windows of a rule: a spike only in the short window does not fire", () => {
    const samples = withWindow(steady(0.0001, 10), "5m", { errors: 10 });
    expect(evaluateSlo(target, samples).severity).toBe("normal");
  });

  it("returns to normal once the short window is clean, even with a hot long window", () => {
    let samples = steady(0.0001, 10);
    samples = withWindow(samples, "1h", { errors: 5 });
    expect(evaluateSlo(target, samples).severity).toBe("normal");
  });

  it("is slow-burn when only the ticket rule fires", () => {
    let samples = steady(0.0001, 10);
    samples = withWindow(samples, "3d", { errors: 0.02 });
    samples = withWindow(samples, "6h", { errors: 0.02 });
    expect(evaluateSlo(target, samples).severity).toBe("slow-burn");
  });

  it("is exhausted when the budget is spent, whatever the burn rates", () => {
    const samples = withWindow(steady(0.0001, 10), "30d", { errors: 0.02 });
    const result = evaluateSlo(target, samples);
    expect(result.severity).toBe("exhausted");
    expect(result.budgetRemaining).toBeLessThanOrEqual(0);
  });

  it("is no-data without traffic, never normal and never breached", () => {
    expect(evaluateSlo(target, steady(0, 0)).severity).toBe("no-data");
  });

  it("is no-data below minEvents in a short window, even at 100% errors", () => {
    // 0.1 req/s × 300 s = 30 events in 5m < 100.
    const samples = withWindow(steady(0, 10), "5m", { errors: 0.1, total: 0.1 });
    expect(evaluateSlo(target, samples).severity).toBe("no-data");
  });

  it("is unknown when a needed query failed, distinct from a breach", () => {
    const samples = withWindow(steady(0.0001, 10), "1h", {
      status: "unknown",
      errors: null,
      total: null,
      error: "timeout",
    });
    const result = evaluateSlo(target, samples);
    expect(result.severity).toBe("unknown");
    expect(result.rules[0]?.longBurnRate).toBeNull();
  });

  it("is unknown when a window was not measured at all", () => {
    const samples = steady(0.0001, 10).filter((sample) => sample.window !== "30m");
    expect(evaluateSlo(target, samples).severity).toBe("unknown");
  });

  it("counts a missing error series as zero errors when there was traffic", () => {
    const samples = steady(0, 10).map((sample) => ({ ...sample, errors: null }));
    expect(evaluateSlo(target, samples).severity).toBe("normal");
  });

  it("a fired rule still wins over an unknown window elsewhere", () => {
    let samples = steady(0.0001, 10);
    for (const window of ["5m", "1h"]) samples = withWindow(samples, window, { errors: 10 });
    samples = withWindow(samples, "3d", { status: "unknown", errors: null, total: null });
    expect(evaluateSlo(target, samples).severity).toBe("fast-burn");
  });
});

describe("burn and budget apart", () => {
  it("a spent budget whose burn stopped is exhausted, burn normal", () => {
    // The whole 30d window spent, the short windows clean again.
    const recovered = withWindow(steady(0, 1_000), "30d", { errors: 2, total: 1_000 });
    const evaluation = evaluateSlo(target, recovered, DEFAULT_BURN_RULES);
    expect(evaluation).toMatchObject({
      severity: "exhausted",
      burn: "normal",
      budget: "exhausted",
    });
    expect(evaluation.explanation).toMatch(/^budget exhausted: .*; burn normal$/);
  });

  it("a spent budget still burning says both", () => {
    const evaluation = evaluateSlo(target, steady(1_000, 1_000), DEFAULT_BURN_RULES);
    expect(evaluation).toMatchObject({
      severity: "exhausted",
      burn: "fast-burn",
      budget: "exhausted",
    });
  });

  it("the budget is low under the safety margin, ok above it, unmeasured without data", () => {
    const low = withWindow(steady(0, 1_000), "30d", { errors: 0.9, total: 1_000 });
    expect(evaluateSlo(target, low, DEFAULT_BURN_RULES)).toMatchObject({
      burn: "normal",
      budget: "low",
    });
    expect(evaluateSlo(target, steady(0, 1_000), DEFAULT_BURN_RULES).budget).toBe("ok");
    expect(evaluateSlo(target, steady(0, 0), DEFAULT_BURN_RULES)).toMatchObject({
      burn: "no-data",
      budget: null,
    });
    expect(budgetStatus(0.25, 0.25)).toBe("ok");
    expect(budgetStatus(0, 0.25)).toBe("exhausted");
  });

  it("the severity is exhausted exactly when the budget is, else the burn (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1_000, noNaN: true }),
        fc.double({ min: 0, max: 10, noNaN: true }),
        (shortErrors, longErrors) => {
          const samples = withWindow(steady(shortErrors, 1_000), "30d", {
            errors: longErrors,
            total: 1_000,
          });
          const e = evaluateSlo(target, samples, DEFAULT_BURN_RULES);
          expect(e.severity === "exhausted").toBe(e.budget === "exhausted");
          if (e.severity !== "exhausted") expect(e.severity).toBe(e.burn);
        },
      ),
    );
  });
});

describe("evaluateSlo properties", () => {
  const rate = fc.double({ min: 1, max: 10_000, noNaN: true });
  const fraction = fc.double({ min: 0, max: 1, noNaN: true });
  const windowRatios = fc.array(fraction, { minLength: windows.length, maxLength: windows.length });

  function samplesOf(total: number, ratios: readonly number[]): SliWindow[] {
    return windows.map((window, index) => ({
      window,
      errorQuery: "e",
      totalQuery: "t",
      errors: total * (ratios[index] ?? 0),
      total,
      status: "ok",
    }));
  }

  it("is monotonic in errors: more errors never give a milder verdict", () => {
    fc.assert(
      fc.property(rate, windowRatios, windowRatios, (total, a, b) => {
        const lower = a.map((x, i) => Math.min(x, b[i] ?? 0));
        const higher = a.map((x, i) => Math.max(x, b[i] ?? 0));
        const mild = evaluateSlo(target, samplesOf(total, lower)).severity;
        const severe = evaluateSlo(target, samplesOf(total, higher)).severity;
        expect(SEVERITY_RANK[severe]).toBeGreaterThanOrEqual(SEVERITY_RANK[mild]);
      }),
    );
  });

  it("is invariant to scaling traffic (above minEvents)", () => {
    fc.assert(
      fc.property(
        rate,
        windowRatios,
        fc.double({ min: 1, max: 1_000, noNaN: true }),
        (total, ratios, k) => {
          const base = evaluateSlo(target, samplesOf(total, ratios)).severity;
          const scaled = evaluateSlo(target, samplesOf(total * k, ratios)).severity;
          expect(scaled).toBe(base);
        },
      ),
    );
  });

  it("keeps the severity order: exhausted ⇒ spent budget; fired rule ⇒ both windows above factor", () => {
    fc.assert(
      fc.property(rate, windowRatios, (total, ratios) => {
        const result = evaluateSlo(target, samplesOf(total, ratios));
        if (result.severity === "exhausted") expect(result.budgetRemaining).toBeLessThanOrEqual(0);
        if (result.budgetRemaining !== null && result.budgetRemaining <= 0) {
          expect(result.severity).toBe("exhausted");
        }
        if (result.severity === "fast-burn" || result.severity === "slow-burn") {
          const rule = result.rules.find((r) => r.fired && r.severity === result.severity)!;
          expect(rule.longBurnRate!).toBeGreaterThan(rule.factor);
          expect(rule.shortBurnRate!).toBeGreaterThan(rule.factor);
          expect(result.rules.some((r) => r.fired && r.severity === "fast-burn")).toBe(
            result.severity === "fast-burn",
          );
        }
        if (result.severity === "normal") expect(result.rules.every((r) => !r.fired)).toBe(true);
      }),
    );
  });
});
