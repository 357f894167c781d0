import {
  isNearOutage,
  isStaleJob,
  pollJobMaxLagMs,
  requiredWindows,
  snapshotEvent,
} from "@safedeploy/core";
import type { BurnRule } from "@safedeploy/core";
import type { PrometheusClient } from "@safedeploy/prometheus";
import { createEnvelope } from "@safedeploy/schema";
import type { Envelope, Slo } from "@safedeploy/schema";
import { measureDirect } from "../measure.js";
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
  readonly onSkipped: (reason: "stale" | "unknown-service") => void;
}

/**
 * Runs one poll job: measures every SLO of the service over every window its policy needs, at the
 * job's own evaluation time, and publishes one snapshot per SLO. A Prometheus outage throws (the
 * job is retried until it is stale) so no snapshot ever claims data that was not read.
 */
export const onPollJob =
  (deps: PollDeps) =>
  async (job: Envelope<"metrics.poll-requested">, deliveryCount: number): Promise<void> => {
    const { intervalStart, intervalEnd } = job.data;
    const isLate = () => {
      const nearOutage = isNearOutage(intervalStart, deliveryCount, deps.lastOutageAt());
      return isStaleJob(intervalEnd, deps.now(), pollJobMaxLagMs(deps.pollIntervalMs, nearOutage));
    };
    if (isLate()) {
      deps.onSkipped("stale");
      return;
    }
    const service = deps.serviceFor(job.service);
    if (service === undefined) {
      deps.onSkipped("unknown-service");
      return;
    }
    const evaluatedAt = intervalStart;
    const time = new Date(evaluatedAt);
    const snapshots = await Promise.all(
      service.slos.map(async (slo) => {
        const mode = slo.sli.mode ?? job.data.mode;
        const windows = await Promise.all(
          requiredWindows(slo, service.burnRates).map((window) =>
            mode === "recorded"
              ? deps.recorded.window(job.service, slo.name, window, time)
              : measureDirect(deps.prometheus, slo.sli, window, time),
          ),
        );
        return snapshotEvent(job.service, { ...slo, ...slo.sli }, mode, evaluatedAt, windows);
      }),
    );
    // An answer that took too long (queries queued behind an outage's retries) describes a moment
    // Prometheus may not have seen: drop it like a job that started late.
    if (isLate()) {
      deps.onSkipped("stale");
      return;
    }
    // Publish only once every SLO was measured: a retry then republishes the same ids (deduped).
    for (const snapshot of snapshots) {
      await deps.publish(
        createEnvelope(snapshot, { source: "collector", time: evaluatedAt, causedBy: job }),
      );
    }
  };
