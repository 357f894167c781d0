import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deploysOf, doraReport, durationStats, sloSeries } from "@safedeploy/core";
import type { DoraDeployEvent, DoraIncident, DoraInput, DoraRollback } from "@safedeploy/core";

const T0 = Date.parse("2026-11-01T00:00:00.000Z");
const H = 3_600_000;
const at = (hours: number) => new Date(T0 + hours * H).toISOString();

const deployed = (
  service: string,
  revision: string,
  hours: number,
  commitHoursBefore: number | null = 1,
  trigger: DoraDeployEvent["trigger"] = "on-deployed",
): DoraDeployEvent => ({
  service,
  revision,
  trigger,
  at: at(hours),
  commitTime: commitHoursBefore === null ? null : at(hours - commitHoursBefore),
});

const base: DoraInput = {
  since: at(0),
  until: at(24 * 10),
  failureWindowMs: 24 * H,
  deployEvents: [],
  incidents: [],
  rollbacks: [],
  owners: { checkout: "team-payments", cart: "team-payments", search: "team-discovery" },
};

describe("deploysOf", () => {
  it("keeps deploy triggers only, one per service and revision at its earliest report", () => {
    const deploys = deploysOf([
      deployed("checkout", "a1", 5, null, "on-rollout-completed"),
      deployed("checkout", "a1", 4, 2, "on-deployed"),
      deployed("checkout", "a2", 6, 1, "on-sync-failed"),
      deployed("checkout", "a3", 7, 1, "on-rollout-step-completed"),
      deployed("checkout", "a4", 8, 1, "on-rollout-aborted"),
      deployed("cart", "a1", 4, 1),
      { ...deployed("cart", "bad", 1), at: "not a time" },
    ]);
    expect(deploys).toEqual([
      { service: "cart", revision: "a1", at: at(4), commitTime: at(3) },
      { service: "checkout", revision: "a1", at: at(4), commitTime: at(2) },
    ]);
  });

  it("takes a commit time from any report of the revision", () => {
    const [deploy] = deploysOf([
      deployed("checkout", "a1", 4, null),
      deployed("checkout", "a1", 5, 3, "on-rollout-completed"),
    ]);
    expect(deploy).toEqual({ service: "checkout", revision: "a1", at: at(4), commitTime: at(2) });
  });
});

describe("durationStats", () => {
  it("gives median, nearest-rank p90 and mean, or nulls without samples", () => {
    expect(durationStats([])).toEqual({
      samples: 0,
      medianSeconds: null,
      p90Seconds: null,
      meanSeconds: null,
    });
    expect(durationStats([30, 10, 20])).toEqual({
      samples: 3,
      medianSeconds: 20,
      p90Seconds: 30,
      meanSeconds: 20,
    });
    const ten = durationStats([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(ten.medianSeconds).toBe(5.5);
    expect(ten.p90Seconds).toBe(9);
  });
});

describe("doraReport", () => {
  const history: DoraInput = {
    ...base,
    deployEvents: [
      deployed("checkout", "c1", 10, 2),
      deployed("checkout", "c2", 30, 4),
      deployed("checkout", "c3", 50, null),
      deployed("cart", "k1", 20, 1),
      deployed("search", "s1", 40, 6),
      deployed("search", "s0", -5, 1), // before the range: not counted, but may take blame
    ],
    incidents: [
      // 2 h after c1: c1 failed.
      { id: "INC-1", service: "checkout", openedAt: at(12), resolvedAt: at(13) },
      // 2 days after c3: outside the 24 h window, no deploy failed; still restored in 30 min.
      { id: "INC-2", service: "checkout", openedAt: at(98), resolvedAt: at(98.5) },
      { id: "INC-3", service: "cart", openedAt: at(100), resolvedAt: null },
      // Within a day of s0 (before the range): not s1's failure.
      { id: "INC-4", service: "search", openedAt: at(-1), resolvedAt: at(0) },
    ],
    rollbacks: [{ service: "search", at: at(41), kind: "rollback-executed" }],
  };

  it("computes the four keys per service, per team and overall", () => {
    const report = doraReport(history);
    expect(report.overall).toMatchObject({
      deploys: 5,
      deploysPerDay: 0.5,
      failedDeploys: 2,
      changeFailureRate: 0.4,
      incidents: 3,
      unresolvedIncidents: 1,
    });
    // Lead times 2 h, 4 h, 1 h, 6 h (c3 has no commit time).
    expect(report.overall.leadTime).toEqual({
      samples: 4,
      medianSeconds: 3 * 3600,
      p90Seconds: 6 * 3600,
      meanSeconds: 3.25 * 3600,
    });
    // INC-1 in 1 h, INC-2 in 30 min; INC-3 is not resolved.
    expect(report.overall.timeToRestore).toMatchObject({ samples: 2, medianSeconds: 2700 });
    const checkout = report.services.find((s) => s.service === "checkout");
    expect(checkout).toMatchObject({
      team: "team-payments",
      deploys: 3,
      failedDeploys: 1,
      incidents: 2,
    });
    expect(checkout?.changeFailureRate).toBeCloseTo(1 / 3);
    expect(report.services.map((s) => s.service)).toEqual(["cart", "checkout", "search"]);
    expect(report.teams.map((t) => [t.team, t.deploys, t.failedDeploys])).toEqual([
      ["team-discovery", 1, 1],
      ["team-payments", 4, 1],
    ]);
  });

  it("blames the latest deploy before a failure, never an earlier one", () => {
    const report = doraReport({
      ...base,
      deployEvents: [deployed("checkout", "c1", 10), deployed("checkout", "c2", 11)],
      rollbacks: [{ service: "checkout", at: at(12), kind: "rollout-aborted" }],
    });
    expect(report.overall.failedDeploys).toBe(1);
    expect(report.overall.changeFailureRate).toBe(0.5);
  });

  it("filters by service or team, and names services without an owner team null", () => {
    const byTeam = doraReport({ ...history, filter: { team: "team-payments" } });
    expect(byTeam.services.map((s) => s.service)).toEqual(["cart", "checkout"]);
    const byService = doraReport({ ...history, filter: { service: "search" } });
    expect(byService.overall.deploys).toBe(1);
    const unowned = doraReport({ ...history, owners: {} });
    expect(unowned.teams).toHaveLength(1);
    expect(unowned.teams[0]?.team).toBeNull();
  });

  it("says null, not zero, for a failure rate without deploys", () => {
    const report = doraReport(base);
    expect(report.overall.deploys).toBe(0);
    expect(report.overall.changeFailureRate).toBeNull();
    expect(report.overall.leadTime.medianSeconds).toBeNull();
    expect(doraReport({ ...base, until: base.since }).overall.deploysPerDay).toBe(0);
  });

  it("leaves out lead and restore times that come out negative (clocks disagree)", () => {
    const report = doraReport({
      ...base,
      deployEvents: [deployed("checkout", "c1", 10, -1)],
      incidents: [{ id: "INC-1", service: "checkout", openedAt: at(12), resolvedAt: at(11) }],
    });
    expect(report.overall.leadTime.samples).toBe(0);
    expect(report.overall.timeToRestore.samples).toBe(0);
  });
});

const services = ["checkout", "cart", "search", "orphan"] as const;
const arbitraryInput: fc.Arbitrary<DoraInput> = fc
  .record({
    deploys: fc.array(
      fc.record({
        service: fc.constantFrom(...services),
        revision: fc.constantFrom("r1", "r2", "r3", "r4", "r5"),
        hours: fc.integer({ min: -48, max: 300 }),
        commitBefore: fc.option(fc.integer({ min: -5, max: 100 })),
        trigger: fc.constantFrom<DoraDeployEvent["trigger"]>(
          "on-deployed",
          "on-rollout-completed",
          "on-sync-failed",
          "on-rollout-aborted",
        ),
      }),
      { maxLength: 40 },
    ),
    incidents: fc.array(
      fc.record({
        service: fc.constantFrom(...services),
        hours: fc.integer({ min: -48, max: 300 }),
        restoreHours: fc.option(fc.integer({ min: -2, max: 50 })),
      }),
      { maxLength: 20 },
    ),
    rollbacks: fc.array(
      fc.record({
        service: fc.constantFrom(...services),
        hours: fc.integer({ min: -48, max: 300 }),
      }),
      { maxLength: 10 },
    ),
    windowHours: fc.integer({ min: 0, max: 72 }),
    rangeHours: fc.integer({ min: 0, max: 240 }),
  })
  .map((r) => ({
    ...base,
    until: at(r.rangeHours),
    failureWindowMs: r.windowHours * H,
    deployEvents: r.deploys.map((d) =>
      deployed(d.service, d.revision, d.hours, d.commitBefore, d.trigger),
    ),
    incidents: r.incidents.map((i, n): DoraIncident => ({
      id: `INC-${n}`,
      service: i.service,
      openedAt: at(i.hours),
      resolvedAt: i.restoreHours === null ? null : at(i.hours + i.restoreHours),
    })),
    rollbacks: r.rollbacks.map((b): DoraRollback => ({
      service: b.service,
      at: at(b.hours),
      kind: "rollback-executed",
    })),
  }));

describe("doraReport properties", () => {
  it("keeps the failure rate in [0, 1], durations non-negative, and counts the deploys in range", () => {
    fc.assert(
      fc.property(arbitraryInput, (input) => {
        const report = doraReport(input);
        const since = Date.parse(input.since);
        const until = Date.parse(input.until);
        const expected = deploysOf(input.deployEvents).filter((d) => {
          const t = Date.parse(d.at);
          return t >= since && t < until;
        }).length;
        expect(report.overall.deploys).toBe(expected);
        for (const metrics of [report.overall, ...report.services, ...report.teams]) {
          if (metrics.changeFailureRate !== null) {
            expect(metrics.changeFailureRate).toBeGreaterThanOrEqual(0);
            expect(metrics.changeFailureRate).toBeLessThanOrEqual(1);
          } else expect(metrics.deploys).toBe(0);
          expect(metrics.failedDeploys).toBeLessThanOrEqual(metrics.deploys);
          for (const stats of [metrics.leadTime, metrics.timeToRestore]) {
            for (const value of [stats.medianSeconds, stats.p90Seconds, stats.meanSeconds]) {
              if (value !== null) expect(value).toBeGreaterThanOrEqual(0);
            }
          }
          expect(metrics.unresolvedIncidents).toBeLessThanOrEqual(metrics.incidents);
        }
        // Per service and per team, the counts add up to the whole.
        const sum = (xs: readonly { deploys: number; failedDeploys: number }[]) =>
          xs.reduce((a, x) => [a[0]! + x.deploys, a[1]! + x.failedDeploys], [0, 0]);
        const whole = [report.overall.deploys, report.overall.failedDeploys];
        expect(sum(report.services)).toEqual(whole);
        expect(sum(report.teams)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it("never counts more failed deploys with a shorter window", () => {
    fc.assert(
      fc.property(arbitraryInput, fc.integer({ min: 0, max: 72 }), (input, shorter) => {
        const windowMs = Math.min(input.failureWindowMs, shorter * H);
        const narrow = doraReport({ ...input, failureWindowMs: windowMs });
        expect(narrow.overall.failedDeploys).toBeLessThanOrEqual(
          doraReport(input).overall.failedDeploys,
        );
      }),
    );
  });
});

describe("sloSeries", () => {
  const point = (minutes: number, budget: number | null, burn1h: number | null, burn5m = 0) => ({
    at: new Date(T0 + minutes * 60_000).toISOString(),
    budgetRemaining: budget,
    burnRates: [
      { window: "1h", burnRate: burn1h },
      { window: "5m", burnRate: burn5m },
    ],
  });

  it("keeps every evaluation when there are few, in time order", () => {
    const series = sloSeries([point(2, 0.8, 2), point(0, 1, 0), point(1, 0.9, 1)], 100);
    expect(series.times).toEqual([0, 1, 2].map((m) => (T0 + m * 60_000) / 1000));
    expect(series.budgetRemaining).toEqual([1, 0.9, 0.8]);
    expect(series.burnRates.map((b) => b.window)).toEqual(["1h", "5m"]);
    expect(series.burnRates[0]?.values).toEqual([0, 1, 2]);
    expect(series.evaluations).toBe(3);
  });

  it("folds buckets into their last budget and highest burn, so a spike stays visible", () => {
    const points = Array.from({ length: 100 }, (_, m) => point(m, 1 - m / 100, m === 37 ? 50 : 1));
    const series = sloSeries(points, 10);
    expect(series.times).toHaveLength(10);
    expect(series.burnRates[0]?.values.filter((v) => v === 50)).toHaveLength(1);
    expect(series.budgetRemaining.at(-1)).toBeCloseTo(0.01);
    expect(series.times.at(-1)).toBe((T0 + 99 * 60_000) / 1000);
  });

  it("draws null where a window was not measured, and skips invalid times", () => {
    const series = sloSeries(
      [point(0, null, null), { ...point(1, 1, 1), at: "never" }, point(2, 0.5, null)],
      5,
    );
    expect(series.budgetRemaining).toEqual([null, 0.5]);
    expect(series.burnRates[0]?.values).toEqual([null, null]);
    expect(sloSeries([], 5).times).toEqual([]);
    expect(() => sloSeries([], 0)).toThrow(RangeError);
  });

  it("never yields more points than asked, and each series as long as its times", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.double({ min: 0, max: 100 }))),
        fc.integer({ min: 1, max: 50 }),
        (raw, maxPoints) => {
          const series = sloSeries(
            raw.map(([m, burn]) => point(m, 1, burn)),
            maxPoints,
          );
          expect(series.times.length).toBeLessThanOrEqual(maxPoints);
          for (const b of series.burnRates) expect(b.values).toHaveLength(series.times.length);
          expect(series.times).toEqual([...series.times].sort((a, b) => a - b));
          const highest = Math.max(0, ...raw.map(([, burn]) => burn));
          const drawn = series.burnRates[0]?.values ?? [];
          expect(Math.max(0, ...drawn.map((v) => v ?? 0))).toBe(highest);
        },
      ),
    );
  });
});
