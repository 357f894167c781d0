import { messageId } from "@safedeploy/schema";
import type { NewEvent, SliWindow, SloSnapshot } from "@safedeploy/schema";
import { renderSliQuery } from "./promql.js";
import { errorRatioRecord, totalRateRecord } from "./rules.js";

/** A poll interval `[start, end)`, aligned to the epoch so every scheduler agrees on it. */
export interface PollInterval {
  readonly start: Date;
  readonly end: Date;
}

/** The interval `now` falls in; every replica computes the same one. */
export function pollIntervalAt(now: Date, intervalMs: number): PollInterval {
  const start = Math.floor(now.getTime() / intervalMs) * intervalMs;
  return { start: new Date(start), end: new Date(start + intervalMs) };
}

/**
 * One poll job per service and interval. Its id names both, so two schedulers publishing at once
 * store each job once (`Nats-Msg-Id` dedup).
 */
export function pollJobs(
  services: readonly string[],
  interval: PollInterval,
  mode: "direct" | "recorded",
): NewEvent<"metrics.poll-requested">[] {
  const intervalStart = interval.start.toISOString();
  return services.map((service) => ({
    type: "metrics.poll-requested",
    id: messageId("metrics.poll-requested", service, intervalStart),
    service,
    data: { intervalStart, intervalEnd: interval.end.toISOString(), mode },
  }));
}

/**
 * How late a poll job may still be answered. Late because it was only queued (GC, CPU contention,
 * a backlog), its answer still describes its own moment: two intervals, but never under 10 s,
 * because such hiccups last seconds whatever the interval (a 2 s bound at a 1 s interval starved
 * the budget of every snapshot on a busy machine). Near an outage (the job is a retry, or
 * Prometheus was unreachable since its moment) Prometheus may not have scraped that moment: two
 * intervals, then it is dropped, so no snapshot claims the middle of an outage.
 */
export function pollJobMaxLagMs(pollIntervalMs: number, nearOutage: boolean): number {
  return nearOutage ? 2 * pollIntervalMs : Math.max(2 * pollIntervalMs, 10_000);
}

/**
 * Whether a job's moment is near a Prometheus outage: its earlier attempt failed, or this replica
 * saw Prometheus unreachable at or after the moment the job measures.
 */
export function isNearOutage(
  intervalStart: string,
  deliveryCount: number,
  lastOutageAt: number | undefined,
): boolean {
  return (
    deliveryCount > 1 || (lastOutageAt !== undefined && lastOutageAt >= Date.parse(intervalStart))
  );
}

/** A job is stale once its interval ended more than `maxLagMs` ago: its moment has passed. */
export function isStaleJob(intervalEnd: string, now: Date, maxLagMs: number): boolean {
  return now.getTime() - Date.parse(intervalEnd) > maxLagMs;
}

/** The SLO fields a snapshot needs. */
export interface SnapshotSlo {
  readonly name: string;
  readonly objective: number;
  readonly window: string;
  readonly minEvents: number;
  readonly errorQuery: string;
  readonly totalQuery: string;
}

/** A measured value: a number (possibly NaN/Inf), absent (no series), or a failed query. */
export type Measurement =
  | { readonly kind: "value"; readonly value: number }
  | { readonly kind: "absent" }
  | { readonly kind: "failed"; readonly error: string };

function finite(measurement: Measurement): number | null {
  return measurement.kind === "value" && Number.isFinite(measurement.value)
    ? measurement.value
    : null;
}

/**
 * One window of a snapshot from what the queries returned. A failed query is `unknown`; a missing
 * or non-finite total is `no-data`; a missing error series with traffic counts as zero errors
 * downstream (it is recorded as `null`, as measured).
 */
export function sliWindow(
  window: string,
  queries: { errorQuery: string; totalQuery: string },
  errors: Measurement,
  total: Measurement,
): SliWindow {
  const failed = [errors, total].find((m) => m.kind === "failed");
  if (failed?.kind === "failed") {
    return {
      window,
      ...queries,
      errors: null,
      total: null,
      status: "unknown",
      error: failed.error,
    };
  }
  const totalValue = finite(total);
  const errorValue = finite(errors);
  const status = totalValue === null || totalValue <= 0 ? "no-data" : "ok";
  return { window, ...queries, errors: errorValue, total: totalValue, status };
}

/** The rendered direct-mode queries of one SLO window. */
export function directQueries(slo: Pick<SnapshotSlo, "errorQuery" | "totalQuery">, window: string) {
  return {
    errorQuery: renderSliQuery(slo.errorQuery, window),
    totalQuery: renderSliQuery(slo.totalQuery, window),
  };
}

/** The recorded-mode queries of one window: one per record name, for every SLO at once. */
export function recordedQueries(window: string) {
  return { errorQuery: errorRatioRecord(window), totalQuery: totalRateRecord(window) };
}

/** The snapshot of one SLO at one moment. */
export function sloSnapshot(
  slo: SnapshotSlo,
  mode: "direct" | "recorded",
  evaluatedAt: string,
  windows: SliWindow[],
): SloSnapshot {
  return {
    slo: slo.name,
    objective: slo.objective,
    sloWindow: slo.window,
    minEvents: slo.minEvents,
    mode,
    evaluatedAt,
    windows,
  };
}

/**
 * The snapshot event of every SLO of one service at one interval: one message per service, its id
 * naming both, so a retried poll or a second collector stores it once.
 */
export function snapshotEvent(
  service: string,
  evaluatedAt: string,
  slos: SloSnapshot[],
): NewEvent<"metrics.snapshot"> {
  return {
    type: "metrics.snapshot",
    id: messageId("metrics.snapshot", service, evaluatedAt),
    service,
    data: { evaluatedAt, slos },
  };
}

/**
 * The windows of a snapshot taken while Prometheus could not be reached: every window `unknown`,
 * naming the error, so an outage is a recorded fact (evaluations, dashboard, audit log) and not a
 * silence; the gate then says `unknown`, never a pass.
 */
export function outageWindows(
  windows: readonly string[],
  queriesFor: (window: string) => { errorQuery: string; totalQuery: string },
  error: string,
): SliWindow[] {
  const failed: Measurement = { kind: "failed", error: `Prometheus unreachable: ${error}` };
  return windows.map((window) => sliWindow(window, queriesFor(window), failed, failed));
}

/**
 * Whether a poll job that failed because Prometheus was unreachable may still be retried: a
 * retry must come before the job is stale (`maxLagMs` after its interval ended) and before the
 * consumer's last delivery. Otherwise the job publishes its outage instead.
 */
export function mayRetryPoll(input: {
  readonly intervalEnd: string;
  readonly now: Date;
  readonly maxLagMs: number;
  /** The delay before the next delivery, or null when this was the last one. */
  readonly nextRetryInMs: number | null;
}): boolean {
  if (input.nextRetryInMs === null) return false;
  const retryAt = new Date(input.now.getTime() + input.nextRetryInMs);
  return !isStaleJob(input.intervalEnd, retryAt, input.maxLagMs);
}
