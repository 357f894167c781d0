import { describe, expect, it } from "vitest";
import { PrometheusError } from "@safedeploy/prometheus";
import type { PrometheusClient } from "@safedeploy/prometheus";
import { createEnvelope } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { onPollJob } from "../src/handlers/poll.js";
import type { PollDeps } from "../src/handlers/poll.js";
import { recordedReader } from "../src/measure.js";

const start = "2026-11-24T09:00:00.000Z";
const end = "2026-11-24T09:00:30.000Z";
const job = createEnvelope(
  {
    type: "metrics.poll-requested",
    id: `metrics.poll-requested:checkout:${start}`,
    service: "checkout",
    data: { intervalStart: start, intervalEnd: end, mode: "direct" },
  },
  { source: "collector", time: start },
);
const slo = {
  name: "availability",
  objective: 99.9,
  window: "30d",
  minEvents: 100,
  sli: { errorQuery: "e[{{.window}}]", totalQuery: "t[{{.window}}]" },
};

/** A Prometheus that answers every vector query with one series, after advancing the clock. */
function prometheusAnswering(value: number, onQuery: () => void): PrometheusClient {
  const client: PrometheusClient = {
    queued: 0,
    query: () => Promise.reject(new Error("unused")),
    queryScalar: () => Promise.reject(new Error("unused")),
    queryRange: () => Promise.reject(new Error("unused")),
    queryVector: () => {
      onQuery();
      return Promise.resolve({ data: [{ labels: {}, value, timestamp: 0 }], warnings: [] });
    },
  };
  return client;
}

function deps(
  clock: { now: number },
  published: Envelope[],
  skipped: string[],
  advanceMs: number,
): PollDeps {
  const prometheus = prometheusAnswering(10, () => (clock.now += advanceMs));
  return {
    serviceFor: (name) =>
      name === "checkout"
        ? {
            slos: [slo],
            burnRates: [{ severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" }],
          }
        : undefined,
    prometheus,
    recorded: recordedReader(prometheus),
    publish: (envelope) => {
      published.push(envelope);
      return Promise.resolve();
    },
    now: () => new Date(clock.now),
    pollIntervalMs: 30_000,
    lastOutageAt: () => undefined,
    lastOutageError: () => undefined,
    nextRetryInMs: (deliveryCount) => (deliveryCount >= 5 ? null : 1_000 * deliveryCount),
    onSkipped: (reason) => skipped.push(reason),
    onOutage: () => undefined,
    onOutagePublished: () => undefined,
  };
}

/** A Prometheus that cannot be reached. */
const unreachable: PrometheusClient = {
  queued: 0,
  query: () => Promise.reject(new Error("unused")),
  queryScalar: () => Promise.reject(new Error("unused")),
  queryRange: () => Promise.reject(new Error("unused")),
  queryVector: () =>
    Promise.reject(
      new PrometheusError("connect ECONNREFUSED 127.0.0.1:9090", {
        errorType: "network",
        retryable: true,
      }),
    ),
};

describe("onPollJob", () => {
  it("publishes one snapshot of all the service's SLOs, measured at the job's own time, caused by the job", async () => {
    const published: Envelope[] = [];
    const skipped: string[] = [];
    const base = deps({ now: Date.parse(start) + 1_000 }, published, skipped, 0);
    const latency = { ...slo, name: "latency", sli: { ...slo.sli, mode: "recorded" as const } };
    const twoSlos: PollDeps = {
      ...base,
      serviceFor: (name) => {
        const service = base.serviceFor(name);
        return service === undefined ? undefined : { ...service, slos: [slo, latency] };
      },
    };
    await onPollJob(twoSlos)(job, 1);
    expect(skipped).toEqual([]);
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      type: "metrics.snapshot",
      id: `metrics.snapshot:checkout:${start}`,
      causationId: job.id,
      data: {
        evaluatedAt: start,
        slos: [
          { slo: "availability", mode: "direct", evaluatedAt: start },
          { slo: "latency", mode: "recorded", evaluatedAt: start },
        ],
      },
    });
    // A service without SLOs has nothing to measure: no message.
    const none: PollDeps = {
      ...base,
      serviceFor: (name) => ({ ...base.serviceFor(name)!, slos: [] }),
    };
    await onPollJob(none)(job, 1);
    expect(published).toHaveLength(1);
  });

  it("answers a job up to maxLag after its interval ended", async () => {
    const published: Envelope[] = [];
    const skipped: string[] = [];
    // 89 s after the interval began is 59 s after it ended: still within the 60 s bound.
    await onPollJob(deps({ now: Date.parse(start) + 89_000 }, published, skipped, 0))(job, 1);
    expect(skipped).toEqual([]);
    expect(published).toHaveLength(1);
  });

  it("holds a job near an outage to two intervals, any other to 10 s", async () => {
    const published: Envelope[] = [];
    const skipped: string[] = [];
    const oneSecond = { ...deps({ now: Date.parse(end) + 9_000 }, published, skipped, 0) };
    await onPollJob({ ...oneSecond, pollIntervalMs: 1_000 })(job, 1);
    // A retry: its first attempt found Prometheus unreachable.
    await onPollJob({ ...oneSecond, pollIntervalMs: 1_000 })(job, 2);
    // A first attempt, but another job found Prometheus unreachable since this one's moment.
    const sawOutage = { ...oneSecond, pollIntervalMs: 1_000, lastOutageAt: () => Date.parse(end) };
    await onPollJob(sawOutage)(job, 1);
    // The retry that ran out of time says its moment was an outage (an unknown snapshot); the
    // first attempt that is only late is dropped.
    expect(published).toHaveLength(2);
    const outage = (published[1] as Envelope<"metrics.snapshot">).data.slos[0]?.windows ?? [];
    expect(outage.map((w) => w.status)).toEqual(["unknown", "unknown", "unknown"]);
    expect(skipped).toEqual(["stale"]);
  });

  it("retries an outage while a retry is on time, then publishes unknown snapshots naming it", async () => {
    const published: Envelope[] = [];
    const skipped: string[] = [];
    const outages: string[] = [];
    const counted: number[] = [];
    const base = deps({ now: Date.parse(start) + 1_000 }, published, skipped, 0);
    const down: PollDeps = {
      ...base,
      prometheus: unreachable,
      recorded: recordedReader(unreachable),
      onOutage: (_job, error) => outages.push(error.message),
      onOutagePublished: (n) => counted.push(n),
    };
    // First attempt: a retry in 1 s is well on time.
    await expect(onPollJob(down)(job, 1)).rejects.toThrow(/ECONNREFUSED/);
    expect(published).toEqual([]);
    // The last delivery: no retry left, the outage is published instead of dead-lettered.
    await onPollJob({ ...down, nextRetryInMs: () => null })(job, 5);
    // A retry that would come after the job is stale: published now.
    const late = { ...down, now: () => new Date(Date.parse(end) + 59_500) };
    await onPollJob(late)(job, 2);
    expect(outages).toHaveLength(3);
    expect(counted).toEqual([1, 1]);
    expect(published).toHaveLength(2);
    // The same id as the real snapshot: one per service and interval, whoever publishes it.
    expect(published[0]).toMatchObject({
      id: `metrics.snapshot:checkout:${start}`,
      data: { evaluatedAt: start, slos: [{ slo: "availability", evaluatedAt: start }] },
    });
    const windows = (published[0] as Envelope<"metrics.snapshot">).data.slos[0]?.windows ?? [];
    expect(windows.map((w) => w.window)).toEqual(["5m", "1h", "30d"]);
    for (const window of windows) {
      expect(window).toMatchObject({
        status: "unknown",
        errors: null,
        total: null,
        error: "Prometheus unreachable: connect ECONNREFUSED 127.0.0.1:9090",
      });
      expect(window.errorQuery).toBe(`e[${window.window}]`);
    }
  });

  it("drops a job that starts too late, and one whose answer arrives too late", async () => {
    const late: Envelope[] = [];
    const skipped: string[] = [];
    await onPollJob(deps({ now: Date.parse(start) + 91_000 }, late, skipped, 0))(job, 1);
    // Each query takes 20 s of clock: the answer comes 80 s after the interval began.
    await onPollJob(deps({ now: Date.parse(start) + 1_000 }, late, skipped, 20_000))(job, 1);
    expect(late).toEqual([]);
    expect(skipped).toEqual(["stale", "stale"]);
  });

  it("skips a service the catalog no longer has", async () => {
    const published: Envelope[] = [];
    const skipped: string[] = [];
    await onPollJob(deps({ now: Date.parse(start) }, published, skipped, 0))(
      { ...job, service: "gone" },
      1,
    );
    expect(skipped).toEqual(["unknown-service"]);
  });
});
