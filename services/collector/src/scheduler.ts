import { pollIntervalAt, pollJobs } from "@safedeploy/core";
import { createEnvelope } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";

export interface SchedulerOptions {
  readonly services: () => readonly string[];
  readonly intervalMs: number;
  readonly mode: "direct" | "recorded";
  readonly publish: (envelope: Envelope<"metrics.poll-requested">) => Promise<unknown>;
  readonly onError: (error: unknown) => void;
  readonly onTick?: (interval: { start: Date; jobs: number }) => void;
}

/** Publishes at most this many jobs at once; 10,000 services go out in a few round trips. */
const PUBLISH_CONCURRENCY = 256;

/**
 * Publishes one poll job per service at the start of every interval (aligned to the epoch).
 * Every replica runs one: job ids name the service and the interval, so each job is stored once.
 */
export function startScheduler(options: SchedulerOptions): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const tick = async (now: Date) => {
    const interval = pollIntervalAt(now, options.intervalMs);
    const jobs = pollJobs(options.services(), interval, options.mode).map((job) =>
      createEnvelope(job, { source: "collector", time: job.data.intervalStart }),
    );
    for (let i = 0; i < jobs.length; i += PUBLISH_CONCURRENCY) {
      await Promise.all(jobs.slice(i, i + PUBLISH_CONCURRENCY).map((job) => options.publish(job)));
    }
    options.onTick?.({ start: interval.start, jobs: jobs.length });
  };

  const schedule = () => {
    if (stopped) return;
    const now = Date.now();
    const next = pollIntervalAt(new Date(now), options.intervalMs).end.getTime();
    timer = setTimeout(() => {
      // Timers run on the monotonic clock, not the wall clock: one may fire a moment before
      // Date.now() reaches `next`. That moment is in the interval before, whose jobs are out, and
      // the next schedule would then skip this interval altogether (seen once a run at fleet scale).
      void tick(new Date(Math.max(Date.now(), next)))
        .catch(options.onError)
        .finally(schedule);
    }, next - now);
  };

  // The current interval right away, so a fresh start does not wait a whole interval.
  void tick(new Date()).catch(options.onError).finally(schedule);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
