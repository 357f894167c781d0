import { parseDuration } from "@safedeploy/schema";
import type { HealthCheck } from "@safedeploy/schema";
import { DEFAULT_MIN_BASELINE_RATIO } from "./plan.js";
import type { RegressionRule } from "./plan.js";

/** What a probe of a health check saw: an answer, or why there was none. */
export type HealthObservation =
  | { readonly status: number; readonly body: string; readonly latencyMs: number }
  | { readonly error: string; readonly latencyMs?: number };

/** `ok`, `warning` (degraded but functional) or `fatal`. */
export type CheckOutcome = "ok" | "warning" | "fatal";

/** One expectation a check failed, with what was expected and what came back. */
export interface CheckFailure {
  /** `request`, `status`, `json $.path`, `bodyContains` or `maxLatency`. */
  readonly expectation: string;
  readonly expected: unknown;
  readonly got: unknown;
  readonly message: string;
}

/** The verdict on one health check. */
export interface CheckResult {
  readonly url: string;
  readonly severity: "fatal" | "warning";
  /** `ok` when every expectation held, else the check's severity. */
  readonly outcome: CheckOutcome;
  readonly failures: readonly CheckFailure[];
  readonly status: number | null;
  readonly latencyMs: number | null;
}

/** Which outcomes halt a train: `fatal` only (default), or `warning` and worse. */
export type HaltOn = "fatal" | "warning";

const OUTCOME_RANK: Readonly<Record<CheckOutcome, number>> = { ok: 0, warning: 1, fatal: 2 };

/** The worst of some outcomes (`ok` for none). */
export function worstOutcome(outcomes: readonly CheckOutcome[]): CheckOutcome {
  return outcomes.reduce<CheckOutcome>(
    (worst, outcome) => (OUTCOME_RANK[outcome] > OUTCOME_RANK[worst] ? outcome : worst),
    "ok",
  );
}

/** Whether an outcome halts a train under `haltOn` (`--fail-on-fatal` decides for warnings). */
export function haltsTrain(outcome: CheckOutcome, haltOn: HaltOn): boolean {
  return outcome === "fatal" || (outcome === "warning" && haltOn === "warning");
}

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** Follows a `$.a.b[0]` path (see `isJsonPath`); `undefined` when a step does not exist. */
export function readJsonPath(value: unknown, path: string): unknown {
  const step = /\.([\w-]+)|\[(\d+)\]/y;
  step.lastIndex = 1;
  let current: unknown = value;
  while (step.lastIndex < path.length) {
    const match = step.exec(path);
    if (match === null) return undefined;
    const [, key, index] = match;
    if (key !== undefined) {
      if (typeof current !== "object" || current === null || Array.isArray(current))
        return undefined;
      if (!Object.hasOwn(current, key)) return undefined;
      current = (current as Record<string, unknown>)[key];
    } else {
      if (!Array.isArray(current)) return undefined;
      current = current[Number(index)];
    }
  }
  return current;
}

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const left = a as Record<string, Json>;
  const right = b as Record<string, Json>;
  const keys = Object.keys(left);
  return (
    keys.length === Object.keys(right).length &&
    keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]))
  );
}

function show(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(value);
}

function parseBody(
  body: string,
): { readonly ok: true; readonly value: unknown } | { readonly ok: false } {
  try {
    return { ok: true, value: JSON.parse(body) as unknown };
  } catch {
    return { ok: false };
  }
}

/**
 * Verifies an observation against a health check: the status, every JSON path assertion, the body
 * match and the latency bound. Each expectation that failed is named with expected and got; a
 * failed check yields its `severity`. A probe that got no answer fails as `request`.
 */
export function evaluateHealthCheck(
  check: HealthCheck,
  observation: HealthObservation,
): CheckResult {
  const base = { url: check.http, severity: check.severity };
  if ("error" in observation) {
    return {
      ...base,
      outcome: check.severity,
      failures: [
        {
          expectation: "request",
          expected: "an answer",
          got: observation.error,
          message: `no answer from ${check.http}: ${observation.error}`,
        },
      ],
      status: null,
      latencyMs: observation.latencyMs ?? null,
    };
  }
  const failures: CheckFailure[] = [];
  const { expect } = check;
  if (observation.status !== expect.status) {
    failures.push({
      expectation: "status",
      expected: expect.status,
      got: observation.status,
      message: `status ${observation.status}, expected ${expect.status}`,
    });
  }
  const assertions = Object.entries(expect.json ?? {});
  if (assertions.length > 0) {
    const parsed = parseBody(observation.body);
    for (const [path, expected] of assertions) {
      const got = parsed.ok ? readJsonPath(parsed.value, path) : undefined;
      if (parsed.ok && jsonEqual(got, expected)) continue;
      failures.push({
        expectation: `json ${path}`,
        expected,
        got: parsed.ok ? (got ?? null) : "a body that is not JSON",
        message: parsed.ok
          ? `${path} is ${show(got)}, expected ${show(expected)}`
          : `${path}: the body is not JSON, expected ${show(expected)}`,
      });
    }
  }
  if (expect.bodyContains !== undefined && !observation.body.includes(expect.bodyContains)) {
    failures.push({
      expectation: "bodyContains",
      expected: expect.bodyContains,
      got: observation.body.length > 200 ? `${observation.body.slice(0, 200)}…` : observation.body,
      message: `the body does not contain ${show(expect.bodyContains)}`,
    });
  }
  if (expect.maxLatency !== undefined) {
    const maxMs = parseDuration(expect.maxLatency);
    if (maxMs !== undefined && observation.latencyMs > maxMs) {
      failures.push({
        expectation: "maxLatency",
        expected: expect.maxLatency,
        got: `${Math.round(observation.latencyMs)}ms`,
        message: `took ${Math.round(observation.latencyMs)} ms, more than ${expect.maxLatency}`,
      });
    }
  }
  return {
    ...base,
    outcome: failures.length === 0 ? "ok" : check.severity,
    failures,
    status: observation.status,
    latencyMs: observation.latencyMs,
  };
}

/** Errors of one series (its labels) in a window. */
export interface ErrorSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly errors: number;
}

/** Error counts per series and the total of requests in one window (before or after a deploy). */
export interface ErrorCounts {
  readonly series: readonly ErrorSeries[];
  readonly total: number;
}

/** Something that changed for the worse after a deploy, with the values that show it. */
export type RegressionFinding =
  | {
      readonly kind: "new-error-series";
      readonly labels: Readonly<Record<string, string>>;
      readonly errors: number;
      readonly message: string;
    }
  | {
      readonly kind: "ratio-increase";
      readonly beforeRatio: number | null;
      readonly afterRatio: number;
      /** The ratio compared against: the measured baseline, or the floor when lower. */
      readonly baseline: number;
      readonly limit: number;
      readonly message: string;
    };

/** The comparison of error rates before and after a deploy. */
export interface RegressionResult {
  readonly regressed: boolean;
  readonly findings: readonly RegressionFinding[];
  readonly before: {
    readonly errors: number;
    readonly total: number;
    readonly ratio: number | null;
  };
  readonly after: {
    readonly errors: number;
    readonly total: number;
    readonly ratio: number | null;
  };
}

/** A stable key of a label set, independent of key order. */
export function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function showLabels(labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, value]) => `${key}="${value}"`).join(", ")}}`;
}

function summarize(counts: ErrorCounts): RegressionResult["before"] {
  const errors = counts.series.reduce((sum, series) => sum + series.errors, 0);
  return { errors, total: counts.total, ratio: counts.total > 0 ? errors / counts.total : null };
}

/**
 * Compares errors before and after a deploy time. Flags every new error series (errors after,
 * none before) and an error ratio above `maxErrorRatioIncrease` × the baseline ratio. The
 * baseline is the ratio before, raised to `minBaselineRatio` (default 0.1%) when lower or
 * unmeasured (no traffic before), so a clean baseline does not turn one error into a regression.
 */
export function detectRegression(
  before: ErrorCounts,
  after: ErrorCounts,
  rule: RegressionRule,
): RegressionResult {
  const findings: RegressionFinding[] = [];
  const erroredBefore = new Set(
    before.series.filter((series) => series.errors > 0).map((series) => seriesKey(series.labels)),
  );
  for (const series of after.series) {
    if (series.errors <= 0 || erroredBefore.has(seriesKey(series.labels))) continue;
    findings.push({
      kind: "new-error-series",
      labels: series.labels,
      errors: series.errors,
      message: `new error series ${showLabels(series.labels)}: ${series.errors} errors after, none before`,
    });
  }
  const beforeSummary = summarize(before);
  const afterSummary = summarize(after);
  if (afterSummary.ratio !== null) {
    const floor = rule.minBaselineRatio ?? DEFAULT_MIN_BASELINE_RATIO;
    const baseline = Math.max(beforeSummary.ratio ?? 0, floor);
    const limit = baseline * rule.maxErrorRatioIncrease;
    if (afterSummary.ratio > limit) {
      findings.push({
        kind: "ratio-increase",
        beforeRatio: beforeSummary.ratio,
        afterRatio: afterSummary.ratio,
        baseline,
        limit,
        message:
          `error ratio ${percent(afterSummary.ratio)} after, ` +
          `${beforeSummary.ratio === null ? "no traffic" : percent(beforeSummary.ratio)} before: ` +
          `above ${rule.maxErrorRatioIncrease} × ${percent(baseline)} = ${percent(limit)}`,
      });
    }
  }
  return {
    regressed: findings.length > 0,
    findings,
    before: beforeSummary,
    after: afterSummary,
  };
}

function percent(ratio: number): string {
  return `${Number((ratio * 100).toPrecision(3))}%`;
}
