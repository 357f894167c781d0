import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  directQueries,
  isNearOutage,
  isStaleJob,
  pollIntervalAt,
  pollJobMaxLagMs,
  pollJobs,
  recordedQueries,
  sliWindow,
  sloSnapshot,
  snapshotEvent,
} from "@safedeploy/core";

const slo = {
  name: "availability",
  objective: 99.9,
  window: "30d",
  minEvents: 100,
  errorQuery: 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))',
  totalQuery: "sum(rate(http_requests_total[{{.window}}]))",
};

describe("poll scheduling", () => {
  it("aligns intervals to the epoch so every scheduler agrees", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 41 }),
        fc.integer({ min: 1_000, max: 3_600_000 }),
        (t, ms) => {
          const interval = pollIntervalAt(new Date(t), ms);
          expect(interval.start.getTime() % ms).toBe(0);
          expect(interval.start.getTime()).toBeLessThanOrEqual(t);
          expect(interval.end.getTime() - interval.start.getTime()).toBe(ms);
          expect(t).toBeLessThan(interval.end.getTime());
        },
      ),
    );
  });

  it("names the service and the interval in each job id", () => {
    const interval = pollIntervalAt(new Date("2026-11-24T09:00:17Z"), 30_000);
    const jobs = pollJobs(["checkout", "search"], interval, "recorded");
    expect(jobs.map((job) => job.id)).toEqual([
      "metrics.poll-requested:checkout:2026-11-24T09:00:00.000Z",
      "metrics.poll-requested:search:2026-11-24T09:00:00.000Z",
    ]);
    // Two schedulers at different moments of the same interval produce the same ids.
    const again = pollJobs(
      ["checkout"],
      pollIntervalAt(new Date("2026-11-24T09:00:29Z"), 30_000),
      "recorded",
    );
    expect(again[0]?.id).toBe(jobs[0]?.id);
  });

  it("lets a job be late by two intervals (never under 10 s), near an outage by two intervals", () => {
    expect(pollJobMaxLagMs(30_000, false)).toBe(60_000);
    expect(pollJobMaxLagMs(1_000, false)).toBe(10_000);
    expect(pollJobMaxLagMs(1_000, true)).toBe(2_000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3_600_000 }), (intervalMs) => {
        const queued = pollJobMaxLagMs(intervalMs, false);
        const nearOutage = pollJobMaxLagMs(intervalMs, true);
        return queued >= 2 * intervalMs && queued >= 10_000 && nearOutage === 2 * intervalMs;
      }),
    );
  });

  it("calls a job near an outage when it is a retry or Prometheus was unreachable since its moment", () => {
    const moment = "2026-11-24T09:00:00.000Z";
    const at = Date.parse(moment);
    expect(isNearOutage(moment, 1, undefined)).toBe(false);
    expect(isNearOutage(moment, 1, at - 1)).toBe(false);
    expect(isNearOutage(moment, 1, at)).toBe(true);
    expect(isNearOutage(moment, 2, undefined)).toBe(true);
  });

  it("calls a job stale once its interval is long past", () => {
    expect(isStaleJob("2026-11-24T09:00:30Z", new Date("2026-11-24T09:01:00Z"), 60_000)).toBe(
      false,
    );
    expect(isStaleJob("2026-11-24T09:00:30Z", new Date("2026-11-24T09:01:31Z"), 60_000)).toBe(true);
  });
});

describe("snapshot windows", () => {
  const queries = directQueries(slo, "5m");

  it("renders direct and recorded queries", () => {
    expect(queries.errorQuery).toContain("[5m]");
    expect(recordedQueries("5m")).toEqual({
      errorQuery: "slo:sli_error:ratio_rate5m",
      totalQuery: "safedeploy:sli_total:rate5m",
    });
  });

  it("is ok with traffic, keeping a missing error series as null", () => {
    expect(
      sliWindow("5m", queries, { kind: "absent" }, { kind: "value", value: 10 }),
    ).toMatchObject({
      status: "ok",
      errors: null,
      total: 10,
    });
  });

  it("is no-data without traffic or with a non-finite total", () => {
    expect(
      sliWindow("5m", queries, { kind: "value", value: 0 }, { kind: "value", value: 0 }).status,
    ).toBe("no-data");
    expect(sliWindow("5m", queries, { kind: "absent" }, { kind: "absent" }).status).toBe("no-data");
    expect(
      sliWindow("5m", queries, { kind: "value", value: 1 }, { kind: "value", value: Number.NaN }),
    ).toMatchObject({
      status: "no-data",
      total: null,
    });
  });

  it("is unknown when either query failed, never a number", () => {
    expect(
      sliWindow("5m", queries, { kind: "failed", error: "timeout" }, { kind: "value", value: 10 }),
    ).toMatchObject({ status: "unknown", errors: null, total: null, error: "timeout" });
  });

  it("builds one snapshot of every SLO of a service, its id naming service and time", () => {
    const at = "2026-11-24T09:00:30.000Z";
    const latency = { ...slo, name: "latency", objective: 99 };
    const event = snapshotEvent("checkout", at, [
      sloSnapshot(slo, "direct", at, []),
      sloSnapshot(latency, "recorded", at, []),
    ]);
    expect(event.id).toBe("metrics.snapshot:checkout:2026-11-24T09:00:30.000Z");
    expect(event.data.evaluatedAt).toBe(at);
    expect(event.data.slos).toMatchObject([
      { slo: "availability", objective: 99.9, sloWindow: "30d", minEvents: 100, mode: "direct" },
      { slo: "latency", objective: 99, mode: "recorded", evaluatedAt: at },
    ]);
  });
});
