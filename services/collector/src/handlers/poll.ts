import {
  directQueries,
  isNearOutage,
  isStaleJob,
  mayRetryPoll,
  outageWindows,
  pollJobMaxLagMs,
  recordedQueries,
  requiredWindows,
  sloSnapshot,
  snapshotEvent,
} from "@safedeploy/core";
import type { BurnRule } from "@safedeploy/core";
import type { PrometheusClient } from "@safedeploy/prometheus";
import { createEnvelope } from "@safedeploy/schema";
import type { Envelope, Slo, SloSnapshot } from "@safedeploy/schema";
import { isOutage, measureDirect } from "../measure.js";
import type { RecordedReader } from "../measure.js";

/** The part of the catalog the collector reads for one service. */
export interface CollectedService {
  readonly slos: readonly Slo[];
  readonly burnRates: readonly BurnRule[];
}

export interface PollDeps {
  readonly serviceFor: (name: string) => CollectedService | undefined;
  readonly prometheus: PrometheusClient;
  readonly recorded: RecordedReader;
  readonly publish: (envelope: Envelope<"metrics.snapshot">) => Promise<unknown>;
  readonly now: () => Date;
  /** Sets how late a job may be answered ({@link pollJobMaxLagMs}). */
  readonly pollIntervalMs: number;
  /** When a poll last failed because Prometheus was unreachable (this replica), if ever. */
  readonly lastOutageAt: () => number | undefined;
  /** Why it failed then. */
  readonly lastOutageError: () => string | undefined;
  /** The delay before delivery `deliveryCount + 1`, or null when this delivery is the last. */
  readonly nextRetryInMs: (deliveryCount: number) => number | null;
  readonly onSkipped: (reason: "stale" | "unknown-service") => void;
  /** Prometheus could not be reached for this job (counted, remembered, logged). */
  readonly onOutage: (job: Envelope<"metrics.poll-requested">, error: Error) => void;
  /** Counts the explicit `unknown` snapshots an outage published. */
  readonly onOutagePublished: (snapshots: number) => void;
}

/** The snapshot of one SLO at `evaluatedAt` when Prometheus could not be reached. */
function outageSnapshot(
  slo: Slo,
  rules: readonly BurnRule[],
  mode: "direct" | "recorded",
  evaluatedAt: string,
  error: string,
): SloSnapshot {
  const queriesFor = (window: string) =>
    mode === "recorded" ? recordedQueries(window) : directQueries(slo.sli, window);
  const windows = outageWindows(requiredWindows(slo, rules), queriesFor, error);
  return sloSnapshot({ ...slo, ...slo.sli }, mode, evaluatedAt, windows);
}

type Job = Envelope<"metrics.poll-requested">;

/** Every SLO of the service, measured at the job's own moment; an outage propagates. */
function measureAll(deps: PollDeps, job: Job, service: CollectedService): Promise<SloSnapshot[]> {
  const evaluatedAt = job.data.intervalStart;
  const time = new Date(evaluatedAt);
  return Promise.all(
    service.slos.map(async (slo) => {
      const mode = slo.sli.mode ?? job.data.mode;
      const windows = await Promise.all(
        requiredWindows(slo, service.burnRates).map((window) =>
          mode === "recorded"
            ? deps.recorded.window(job.service, slo.name, window, time)
            : measureDirect(deps.prometheus, slo.sli, window, time),
        ),
      );
      return sloSnapshot({ ...slo, ...slo.sli }, mode, evaluatedAt, windows);
    }),
  );
}

/** The service's snapshot of a job, caused by it, at its own moment (its id dedupes a repeat). */
async function publishSnapshot(deps: PollDeps, job: Job, slos: SloSnapshot[]): Promise<void> {
  await deps.publish(
    createEnvelope(snapshotEvent(job.service, job.data.intervalStart, slos), {
      source: "collector",
      time: job.data.intervalStart,
      causedBy: job,
    }),
  );
}

/** An explicit `unknown` snapshot of every SLO of the job, naming why Prometheus was not read. */
async function publishOutage(deps: PollDeps, job: Job, service: CollectedService, error: string) {
  const slos = service.slos.map((slo) =>
    outageSnapshot(
      slo,
      service.burnRates,
      slo.sli.mode ?? job.data.mode,
      job.data.intervalStart,
      error,
    ),
  );
  await publishSnapshot(deps, job, slos);
  deps.onOutagePublished(slos.length);
}

/**
 * Runs one poll job: measures every SLO of the service over every window its policy needs, at the
 * job's own evaluation time, and publishes one snapshot of them all. A Prometheus outage is retried
 * while a retry can still be on time; after that the job publishes explicit `unknown` snapshots
 * naming the error (the same id as the real one: one per service and interval), so an outage is seen,
 * never mistaken for silence. A job only late from a backlog is dropped (staleness covers it).
 */
export const onPollJob =
  (deps: PollDeps) =>
  async (job: Job, deliveryCount: number): Promise<void> => {
    const { intervalStart, intervalEnd } = job.data;
    const nearOutage = () => isNearOutage(intervalStart, deliveryCount, deps.lastOutageAt());
    const isLate = () =>
      isStaleJob(intervalEnd, deps.now(), pollJobMaxLagMs(deps.pollIntervalMs, nearOutage()));
    const service = deps.serviceFor(job.service);
    if (service === undefined) {
      deps.onSkipped("unknown-service");
      return;
    }
    if (service.slos.length === 0) return; // nothing to measure
    if (isLate()) {
      // A retry that ran out of time: its moment was in an outage, and says so.
      if (deliveryCount === 1) deps.onSkipped("stale");
      else {
        const why = deps.lastOutageError() ?? "it did not answer within two intervals";
        await publishOutage(deps, job, service, why);
      }
      return;
    }
    let slos;
    try {
      slos = await measureAll(deps, job, service);
    } catch (error) {
      if (!isOutage(error)) throw error;
      deps.onOutage(job, error as Error);
      const retry = mayRetryPoll({
        intervalEnd,
        now: deps.now(),
        maxLagMs: pollJobMaxLagMs(deps.pollIntervalMs, true),
        nextRetryInMs: deps.nextRetryInMs(deliveryCount),
      });
      if (retry) throw error;
      await publishOutage(deps, job, service, (error as Error).message);
      return;
    }
    // An answer that took too long (queries queued behind an outage's retries) describes a moment
    // Prometheus may not have seen: drop it like a job that started late.
    if (isLate()) deps.onSkipped("stale");
    // Publish only once every SLO was measured: a retry then republishes the same id (deduped).
    else await publishSnapshot(deps, job, slos);
  };
