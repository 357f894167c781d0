// The poll scheduler: one set of jobs per interval, at its start, every interval, even when the
// timer fires a moment before the wall clock reaches the interval's start.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Envelope } from "@safedeploy/schema";
import { startScheduler } from "../src/scheduler.js";

const INTERVAL_MS = 30_000;
const boundary = Date.parse("2026-11-24T09:00:00.000Z");

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function scheduler(published: Envelope<"metrics.poll-requested">[]) {
  return startScheduler({
    services: () => ["checkout", "cart"],
    intervalMs: INTERVAL_MS,
    mode: "direct",
    // Publishing 10,000 jobs takes a moment: a second here.
    publish: async (job) => {
      published.push(job);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    },
    onError: (error) => {
      throw error;
    },
  });
}

const intervals = (jobs: readonly Envelope<"metrics.poll-requested">[]) => [
  ...new Set(jobs.map((job) => job.data.intervalStart)),
];

/** The three intervals from 09:00:10 to 09:01:10, one set of jobs each. */
const THREE_INTERVALS = [
  "2026-11-24T09:00:00.000Z",
  "2026-11-24T09:00:30.000Z",
  "2026-11-24T09:01:00.000Z",
];

/** A scheduler started at 09:00:10, and what it published. */
function startedTenSecondsIn() {
  vi.setSystemTime(boundary + 10_000);
  const published: Envelope<"metrics.poll-requested">[] = [];
  return { published, running: scheduler(published) };
}

describe("the poll scheduler", () => {
  it("publishes a job per service for the current interval at once, then for every next one", async () => {
    const { published, running } = startedTenSecondsIn();
    await vi.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    running.stop();
    expect(intervals(published)).toEqual(THREE_INTERVALS);
    expect(published.filter((job) => job.service === "checkout")).toHaveLength(3);
  });

  it("does not skip an interval when the timer fires before the wall clock reaches it", async () => {
    const { published, running } = startedTenSecondsIn();
    await vi.advanceTimersByTimeAsync(1_000); // the first interval's jobs are out, the timer set
    // The wall clock falls 3 ms behind the timers (NTP slewing, a cached loop time).
    vi.setSystemTime(Date.now() - 3);
    await vi.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    running.stop();
    expect(intervals(published)).toEqual(THREE_INTERVALS);
  });
});
