import { detectRegression, renderSliQuery } from "@safedeploy/core";
import type { ErrorCounts, RegressionResult, RegressionRule } from "@safedeploy/core";
import type { PrometheusClient } from "@safedeploy/prometheus";
import { formatDuration } from "@safedeploy/schema";
import type { ServiceDocument } from "@safedeploy/schema";

/**
 * The PromQL a regression check measures, each with `{{.window}}` where the window goes. Values
 * are compared as returned: counts with `increase()`, per-second rates with `rate()` (the ratio is
 * the same either way).
 */
export interface ErrorQueries {
  /** Errors per series, e.g. `sum by (code) (increase(http_requests_total{code=~"5.."}[{{.window}}]))`. */
  readonly errorQuery: string;
  /** All requests, summed over whatever series it returns. */
  readonly totalQuery: string;
}

/** Errors before and after a deploy, and the windows they were measured over. */
export interface ErrorMeasurement {
  readonly before: ErrorCounts;
  readonly after: ErrorCounts;
  /** `[from, to]` ISO times of each window; `after` is shortened to `now` when not yet over. */
  readonly windows: {
    readonly before: readonly [string, string];
    readonly after: readonly [string, string];
  };
}

/**
 * The error and total queries of a service's SLO (the first, or the one named): what the
 * regression check compares when the train gives nothing more specific.
 */
export function regressionQueries(service: ServiceDocument, slo?: string): ErrorQueries | null {
  const chosen =
    slo === undefined ? service.spec.slos[0] : service.spec.slos.find((s) => s.name === slo);
  if (chosen === undefined) return null;
  return { errorQuery: chosen.sli.errorQuery, totalQuery: chosen.sli.totalQuery };
}

const finite = (value: number) => (Number.isFinite(value) ? value : 0);

async function countsAt(
  client: PrometheusClient,
  queries: ErrorQueries,
  time: Date,
  windowMs: number,
): Promise<ErrorCounts> {
  const window = formatDuration(Math.max(1_000, Math.round(windowMs / 1_000) * 1_000));
  const [errors, total] = await Promise.all([
    client.queryVector(renderSliQuery(queries.errorQuery, window), { time }),
    client.queryVector(renderSliQuery(queries.totalQuery, window), { time }),
  ]);
  return {
    series: errors.data.map((sample) => ({ labels: sample.labels, errors: finite(sample.value) })),
    total: total.data.reduce((sum, sample) => sum + finite(sample.value), 0),
  };
}

/**
 * Measures errors per series in the window before a deploy time and the window after it (cut at
 * `now` when it is not over yet; empty when the deploy is not yet in the past). Prometheus
 * failures propagate as `PrometheusError` (retryable or not): a regression check never guesses.
 */
export async function measureErrors(
  client: PrometheusClient,
  queries: ErrorQueries,
  options: { readonly deployedAt: Date; readonly windowMs: number; readonly now: Date },
): Promise<ErrorMeasurement> {
  const at = options.deployedAt.getTime();
  const afterEnd = Math.min(at + options.windowMs, options.now.getTime());
  const afterMs = afterEnd - at;
  const [before, after] = await Promise.all([
    countsAt(client, queries, options.deployedAt, options.windowMs),
    afterMs >= 1_000
      ? countsAt(client, queries, new Date(afterEnd), afterMs)
      : Promise.resolve<ErrorCounts>({ series: [], total: 0 }),
  ]);
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    before,
    after,
    windows: {
      before: [iso(at - options.windowMs), iso(at)],
      after: [iso(at), iso(afterEnd)],
    },
  };
}

/** Measures and judges a regression rule around a deploy time. */
export async function checkRegression(
  client: PrometheusClient,
  queries: ErrorQueries,
  rule: RegressionRule,
  options: { readonly deployedAt: Date; readonly windowMs: number; readonly now: Date },
): Promise<RegressionResult> {
  const measured = await measureErrors(client, queries, options);
  return detectRegression(measured.before, measured.after, rule);
}
