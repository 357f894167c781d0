import { parseDuration } from "@safedeploy/schema";
import type {
  AppliedBurnRule,
  BudgetStatus,
  Burn,
  EvaluatedSlo,
  EventData,
  Severity,
  SliWindow,
} from "@safedeploy/schema";

/**
 * Error-budget math (Google SRE Workbook, "Alerting on SLOs"). SLI queries return per-second
 * rates, as in Sloth, so the events in a window are `rate × window seconds`.
 */

/** A burn-rate rule: fires when the burn rate over both windows exceeds `factor`. */
export interface BurnRule {
  readonly severity: "fast-burn" | "slow-burn";
  readonly factor: number;
  readonly long: string;
  readonly short: string;
}

/** The SRE Workbook's multiwindow, multi-burn-rate table (page at 14.4× and 6×, ticket at 1×). */
export const DEFAULT_BURN_RULES: readonly BurnRule[] = [
  { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" },
  { severity: "fast-burn", factor: 6, long: "6h", short: "30m" },
  { severity: "slow-burn", factor: 1, long: "3d", short: "6h" },
];

/** What one evaluation needs to know about the SLO. */
export interface SloTarget {
  /** Percent, 0 < objective < 100. */
  readonly objective: number;
  /** The budget window, e.g. `30d`. */
  readonly window: string;
  /** Fewer events than this in a rule's short window make the rule `no-data`. */
  readonly minEvents: number;
  /** The service's promotion safety margin: less budget left than this is `low`. */
  readonly safetyMargin: number;
}

/** The result of evaluating one SLO: every number it used, so it explains itself. */
export interface SloEvaluation {
  /** `exhausted` when the budget is spent, else {@link SloEvaluation.burn}. */
  readonly severity: Severity;
  /** How fast the budget burns now, whatever is left of it. */
  readonly burn: Burn;
  /** What is left of the budget; null when the budget window could not be measured. */
  readonly budget: BudgetStatus | null;
  readonly budgetRemaining: number | null;
  /** Error ratio over the budget window. */
  readonly errorRatio: number | null;
  readonly burnRates: { window: string; errorRatio: number | null; burnRate: number | null }[];
  readonly rules: AppliedBurnRule[];
  readonly explanation: string;
}

/** The part of the budget a ratio of errors would spend: `1 − objective/100`. */
export function errorBudget(objective: number): number {
  return 1 - objective / 100;
}

/** errors / total, or `null` when there was no traffic or a value is not a finite number. */
export function errorRatio(errors: number | null, total: number | null): number | null {
  if (errors === null || total === null) return null;
  if (!Number.isFinite(errors) || !Number.isFinite(total) || total <= 0 || errors < 0) return null;
  return Math.min(errors / total, 1);
}

/** How many times faster than sustainable the budget is being spent. */
export function burnRate(ratio: number, objective: number): number {
  return ratio / errorBudget(objective);
}

/** Fraction of the budget left over the SLO window; negative once overspent. */
export function budgetRemaining(ratio: number, objective: number): number {
  return 1 - burnRate(ratio, objective);
}

/** Events in a window from a per-second rate. */
export function eventsInWindow(ratePerSecond: number, window: string): number {
  return (ratePerSecond * (parseDuration(window) ?? 0)) / 1_000;
}

type WindowState =
  | { readonly kind: "ok"; readonly ratio: number; readonly events: number }
  | { readonly kind: "no-data" }
  | { readonly kind: "unknown"; readonly error: string };

function windowState(windows: ReadonlyMap<string, SliWindow>, window: string): WindowState {
  const sample = windows.get(window);
  if (sample === undefined) return { kind: "unknown", error: `window ${window} was not measured` };
  if (sample.status === "unknown")
    return { kind: "unknown", error: sample.error ?? "query failed" };
  const ratio = errorRatio(sample.errors ?? (sample.total === null ? null : 0), sample.total);
  if (sample.status === "no-data" || ratio === null || sample.total === null)
    return { kind: "no-data" };
  return { kind: "ok", ratio, events: eventsInWindow(sample.total, window) };
}

const round = (value: number): number => Math.round(value * 1_000) / 1_000;

/** What is left of a budget: spent, under the safety margin, or fine; null when not measured. */
export function budgetStatus(remaining: number | null, safetyMargin: number): BudgetStatus | null {
  if (remaining === null) return null;
  if (remaining <= 0) return "exhausted";
  return remaining < safetyMargin ? "low" : "ok";
}

/**
 * Evaluates one SLO from its SLI windows. Its burn is the worst burn-rate rule that fires on both
 * its windows; else `unknown` if a needed query failed, `no-data` if a rule's short window had too
 * little traffic to judge, or `normal`. Its budget is spent, low or ok. Its severity is
 * `exhausted` when the budget is spent, else the burn.
 */
export function evaluateSlo(
  target: SloTarget,
  windows: readonly SliWindow[],
  rules: readonly BurnRule[] = DEFAULT_BURN_RULES,
): SloEvaluation {
  const byWindow = new Map(windows.map((sample) => [sample.window, sample]));
  const budgetState = windowState(byWindow, target.window);
  const overall = budgetState.kind === "ok" ? budgetState.ratio : null;
  const remaining = overall === null ? null : budgetRemaining(overall, target.objective);

  const burnRates = windows.map((sample) => {
    const state = windowState(byWindow, sample.window);
    const ratio = state.kind === "ok" ? state.ratio : null;
    return {
      window: sample.window,
      errorRatio: ratio,
      burnRate: ratio === null ? null : burnRate(ratio, target.objective),
    };
  });

  const judged = rules.map((rule) => {
    const long = windowState(byWindow, rule.long);
    const short = windowState(byWindow, rule.short);
    const longBurnRate = long.kind === "ok" ? burnRate(long.ratio, target.objective) : null;
    const shortBurnRate = short.kind === "ok" ? burnRate(short.ratio, target.objective) : null;
    const enoughTraffic = short.kind === "ok" && short.events >= target.minEvents;
    const fired =
      enoughTraffic &&
      longBurnRate !== null &&
      shortBurnRate !== null &&
      longBurnRate > rule.factor &&
      shortBurnRate > rule.factor;
    return {
      applied: { ...rule, longBurnRate, shortBurnRate, fired } satisfies AppliedBurnRule,
      unknown: long.kind === "unknown" || short.kind === "unknown",
      tooLittleTraffic: short.kind !== "unknown" && !enoughTraffic,
    };
  });
  const applied = judged.map((rule) => rule.applied);
  const sawUnknown = budgetState.kind === "unknown" || judged.some((rule) => rule.unknown);
  const sawNoData = judged.some((rule) => rule.tooLittleTraffic);

  const firedRule =
    applied.find((rule) => rule.fired && rule.severity === "fast-burn") ??
    applied.find((rule) => rule.fired);
  let burn: Burn;
  let burnExplanation: string;
  if (firedRule !== undefined) {
    burn = firedRule.severity;
    burnExplanation =
      `${firedRule.severity}: burn ${round(firedRule.longBurnRate ?? 0)} > ${firedRule.factor} over ` +
      `${firedRule.long} and ${round(firedRule.shortBurnRate ?? 0)} > ${firedRule.factor} over ${firedRule.short}`;
  } else if (sawUnknown) {
    burn = "unknown";
    burnExplanation = "a query failed; no verdict until it answers";
  } else if (sawNoData || overall === null) {
    burn = "no-data";
    burnExplanation = `too little traffic to judge (fewer than ${target.minEvents} events in a short window)`;
  } else {
    burn = "normal";
    burnExplanation = `within budget: ${round((remaining ?? 1) * 100)}% of the ${target.window} budget left`;
  }
  const spent = remaining !== null && remaining <= 0 ? remaining : null;
  const severity: Severity = spent !== null ? "exhausted" : burn;
  const explanation =
    spent !== null
      ? `budget exhausted: ${round(spent * 100)}% left of the ${target.window} budget` +
        (burn === "normal" ? "; burn normal" : `; ${burnExplanation}`)
      : burnExplanation;
  return {
    severity,
    burn,
    budget: budgetStatus(remaining, target.safetyMargin),
    budgetRemaining: remaining,
    errorRatio: overall,
    burnRates,
    rules: applied,
    explanation,
  };
}

/** Breach ladder, for "worst of" and monotonicity: no-data and unknown are not breaches. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = {
  normal: 0,
  "no-data": 0,
  unknown: 0,
  "slow-burn": 1,
  "fast-burn": 2,
  exhausted: 3,
};

/** Burn ladder, for "worst of": no-data and unknown are not burns. */
export const BURN_RANK: Readonly<Record<Burn, number>> = {
  normal: 0,
  "no-data": 0,
  unknown: 0,
  "slow-burn": 1,
  "fast-burn": 2,
};

/** The windows an SLO must be measured over: its budget window and every rule's two windows. */
export function requiredWindows(
  target: Pick<SloTarget, "window">,
  rules: readonly BurnRule[],
): string[] {
  const windows = new Set<string>([target.window]);
  for (const rule of rules) {
    windows.add(rule.long);
    windows.add(rule.short);
  }
  return [...windows].sort((a, b) => (parseDuration(a) ?? 0) - (parseDuration(b) ?? 0));
}

/**
 * Evaluates every SLO of a service's snapshot, in its order, under the service's burn-rate rules
 * and safety margin: the budget service's decision, and replay's.
 */
export function evaluateSnapshot(
  snapshot: EventData<"metrics.snapshot">,
  rules: readonly BurnRule[],
  safetyMargin: number,
): EvaluatedSlo[] {
  return snapshot.slos.map((slo) => ({
    slo: slo.slo,
    evaluatedAt: slo.evaluatedAt,
    objective: slo.objective,
    ...evaluateSlo(
      {
        objective: slo.objective,
        window: slo.sloWindow,
        minEvents: slo.minEvents,
        safetyMargin,
      },
      slo.windows,
      rules,
    ),
    windows: slo.windows,
  }));
}
