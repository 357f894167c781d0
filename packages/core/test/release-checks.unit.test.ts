import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HealthCheck } from "@safedeploy/schema";
import {
  detectRegression,
  evaluateHealthCheck,
  haltsTrain,
  jsonEqual,
  readJsonPath,
  seriesKey,
  worstOutcome,
} from "@safedeploy/core";

const check = (input: unknown) => HealthCheck.parse(input);
const healthz = check({
  http: "http://checkout.internal/healthz",
  expect: {
    status: 200,
    json: { "$.status": "ok", "$.deps[1].name": "db" },
    bodyContains: "ready",
    maxLatency: "500ms",
  },
  severity: "fatal",
});
const goodBody = JSON.stringify({
  status: "ok",
  ready: true,
  deps: [{ name: "cache" }, { name: "db" }],
});

describe("evaluateHealthCheck", () => {
  it("is ok when the status, every JSON path, the body and the latency hold", () => {
    const result = evaluateHealthCheck(healthz, { status: 200, body: goodBody, latencyMs: 120 });
    expect(result).toEqual({
      url: "http://checkout.internal/healthz",
      severity: "fatal",
      outcome: "ok",
      failures: [],
      status: 200,
      latencyMs: 120,
    });
  });

  it("names every failed expectation with expected and got, and yields the check's severity", () => {
    const body = JSON.stringify({ status: "degraded", deps: [{ name: "cache" }] });
    const result = evaluateHealthCheck(healthz, { status: 503, body, latencyMs: 900 });
    expect(result.outcome).toBe("fatal");
    expect(result.failures.map((f) => [f.expectation, f.expected, f.got])).toEqual([
      ["status", 200, 503],
      ["json $.status", "ok", "degraded"],
      ["json $.deps[1].name", "db", null],
      ["bodyContains", "ready", body],
      ["maxLatency", "500ms", "900ms"],
    ]);
    expect(result.failures[1]?.message).toBe('$.status is "degraded", expected "ok"');
  });

  it("a failed warning check is a warning", () => {
    const warn = check({
      http: "http://x.internal/",
      expect: { status: 204 },
      severity: "warning",
    });
    expect(evaluateHealthCheck(warn, { status: 200, body: "", latencyMs: 1 }).outcome).toBe(
      "warning",
    );
    expect(evaluateHealthCheck(warn, { status: 204, body: "", latencyMs: 1 }).outcome).toBe("ok");
  });

  it("a body that is not JSON fails every JSON assertion", () => {
    const result = evaluateHealthCheck(healthz, {
      status: 200,
      body: "ready, not json",
      latencyMs: 1,
    });
    expect(result.failures.map((f) => f.expectation)).toEqual([
      "json $.status",
      "json $.deps[1].name",
    ]);
    expect(result.failures[0]?.got).toBe("a body that is not JSON");
  });

  it("no answer fails as request, with the error", () => {
    const result = evaluateHealthCheck(healthz, { error: "ECONNREFUSED" });
    expect(result).toMatchObject({ outcome: "fatal", status: null, latencyMs: null });
    expect(result.failures).toEqual([
      expect.objectContaining({ expectation: "request", got: "ECONNREFUSED" }),
    ]);
  });

  it("compares JSON values deeply", () => {
    const deep = check({
      http: "http://x.internal/",
      expect: { json: { "$.v": { a: [1, { b: true }] } } },
    });
    const body = JSON.stringify({ v: { a: [1, { b: true }] } });
    expect(evaluateHealthCheck(deep, { status: 200, body, latencyMs: 1 }).outcome).toBe("ok");
  });
});

describe("readJsonPath and jsonEqual", () => {
  it("follows names and indexes, undefined where a step is missing", () => {
    const value = { a: { b: [10, { c: "x" }] } };
    expect(readJsonPath(value, "$")).toBe(value);
    expect(readJsonPath(value, "$.a.b[1].c")).toBe("x");
    expect(readJsonPath(value, "$.a.b[5]")).toBeUndefined();
    expect(readJsonPath(value, "$.a.b.c")).toBeUndefined();
    expect(readJsonPath(value, "$.a[0]")).toBeUndefined();
    expect(readJsonPath(value, "$.zz")).toBeUndefined();
    expect(readJsonPath(value, "$.a..b")).toBeUndefined();
    expect(readJsonPath(null, "$.a")).toBeUndefined();
  });

  it("jsonEqual ignores key order and tells arrays from objects", () => {
    expect(jsonEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBe(true);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual([1, 2], [1, 3])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });

  it("jsonEqual holds for any JSON value and its reparse", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => jsonEqual(value, JSON.parse(JSON.stringify(value)))),
    );
  });
});

describe("outcomes", () => {
  it("worstOutcome and haltsTrain", () => {
    expect(worstOutcome([])).toBe("ok");
    expect(worstOutcome(["ok", "warning", "ok"])).toBe("warning");
    expect(worstOutcome(["warning", "fatal", "ok"])).toBe("fatal");
    expect(haltsTrain("fatal", "fatal")).toBe(true);
    expect(haltsTrain("warning", "fatal")).toBe(false);
    expect(haltsTrain("warning", "warning")).toBe(true);
    expect(haltsTrain("ok", "warning")).toBe(false);
  });
});

describe("detectRegression", () => {
  const rule = { maxErrorRatioIncrease: 2 };
  const s = (code: string, errors: number) => ({ labels: { code, route: "/pay" }, errors });

  it("is clean when the ratio stays under the limit and no series is new", () => {
    const result = detectRegression(
      { series: [s("500", 10)], total: 1000 },
      { series: [s("500", 15)], total: 1000 },
      rule,
    );
    expect(result).toEqual({
      regressed: false,
      findings: [],
      before: { errors: 10, total: 1000, ratio: 0.01 },
      after: { errors: 15, total: 1000, ratio: 0.015 },
    });
  });

  it("flags a ratio above maxErrorRatioIncrease × the baseline, with the values", () => {
    const result = detectRegression(
      { series: [s("500", 10)], total: 1000 },
      { series: [s("500", 30)], total: 1000 },
      rule,
    );
    expect(result.regressed).toBe(true);
    expect(result.findings).toEqual([
      {
        kind: "ratio-increase",
        beforeRatio: 0.01,
        afterRatio: 0.03,
        baseline: 0.01,
        limit: 0.02,
        message: "error ratio 3% after, 1% before: above 2 × 1% = 2%",
      },
    ]);
  });

  it("flags a new error series even when the ratio is fine", () => {
    const result = detectRegression(
      { series: [s("500", 10), s("502", 0)], total: 1000 },
      {
        series: [{ labels: { route: "/pay", code: "500" }, errors: 10 }, s("502", 1)],
        total: 1000,
      },
      rule,
    );
    expect(result.findings).toEqual([
      {
        kind: "new-error-series",
        labels: { code: "502", route: "/pay" },
        errors: 1,
        message: 'new error series {code="502", route="/pay"}: 1 errors after, none before',
      },
    ]);
  });

  it("uses the floor for a zero baseline: a few errors after a clean window are not a regression", () => {
    const clean = { series: [], total: 10_000 };
    const few = detectRegression(
      clean,
      { series: [{ labels: {}, errors: 1 }], total: 10_000 },
      {
        ...rule,
      },
    );
    // The one series is new, but the ratio 0.01% is under 2 × 0.1%.
    expect(few.findings.map((f) => f.kind)).toEqual(["new-error-series"]);
    const many = detectRegression(
      { series: [{ labels: {}, errors: 0 }], total: 0 },
      { series: [{ labels: {}, errors: 50 }], total: 1000 },
      { ...rule, minBaselineRatio: 0.01 },
    );
    expect(many.findings).toContainEqual(
      expect.objectContaining({
        kind: "ratio-increase",
        beforeRatio: null,
        baseline: 0.01,
        limit: 0.02,
      }),
    );
    expect(many.findings.find((f) => f.kind === "ratio-increase")?.message).toContain(
      "no traffic before",
    );
  });

  it("no traffic after is no ratio finding", () => {
    const result = detectRegression({ series: [], total: 100 }, { series: [], total: 0 }, rule);
    expect(result).toMatchObject({ regressed: false, after: { ratio: null } });
  });

  it("seriesKey does not depend on key order", () => {
    expect(seriesKey({ a: "1", b: "2" })).toBe(seriesKey({ b: "2", a: "1" }));
  });

  it("never flags when after equals before (property)", () => {
    const counts = fc.record({
      series: fc.uniqueArray(
        fc.record({
          labels: fc.record({ code: fc.constantFrom("500", "502", "503") }),
          errors: fc.nat(100),
        }),
        { selector: (series) => series.labels.code },
      ),
      total: fc.integer({ min: 1000, max: 10_000 }),
    });
    fc.assert(
      fc.property(counts, fc.double({ min: 1.01, max: 10, noNaN: true }), (window, factor) => {
        expect(detectRegression(window, window, { maxErrorRatioIncrease: factor }).regressed).toBe(
          false,
        );
      }),
    );
  });
});
