import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HealthCheck, ReleaseTrainDocument, TrainStep, isJsonPath } from "@safedeploy/schema";
import { issues, train } from "./catalog-fixtures.js";

const step = { service: "checkout", image: "registry.example.com/shop/checkout:v1.6.0" };

describe("ReleaseTrain", () => {
  it("accepts the contract's example", () => {
    const parsed = ReleaseTrainDocument.parse(
      train(
        [
          {
            ...step,
            guardWindow: "10m",
            checks: [
              {
                http: "http://checkout.internal/healthz",
                expect: {
                  status: 200,
                  json: { "$.status": "ok" },
                  bodyContains: "ready",
                  maxLatency: "500ms",
                },
                severity: "fatal",
              },
            ],
            regression: { maxErrorRatioIncrease: 2 },
          },
        ],
        { finalChecks: [], followUps: ["1h", "4h", "12h"] },
      ),
    );
    expect(parsed.spec.steps[0]?.checks[0]?.expect.json).toEqual({ "$.status": "ok" });
    expect(parsed.spec.steps[0]?.regression).toEqual({ maxErrorRatioIncrease: 2 });
  });

  it("fills in guard window, checks, final checks and follow-ups", () => {
    const parsed = ReleaseTrainDocument.parse(train([step]));
    expect(parsed.spec).toEqual({
      steps: [{ ...step, guardWindow: "10m", checks: [] }],
      finalChecks: [],
      followUps: ["1h", "4h", "12h"],
    });
  });

  it("needs at least one step and valid follow-up durations", () => {
    expect(issues(ReleaseTrainDocument, train([]))).toEqual([
      "spec.steps: needs at least one step",
    ]);
    expect(issues(ReleaseTrainDocument, train([step], { followUps: ["1h", "later"] }))).toEqual([
      "spec.followUps.1: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
    expect(issues(ReleaseTrainDocument, train([step], { finalCheck: [] }))).toEqual([
      'spec: Unrecognized key: "finalCheck" (finalCheck)',
    ]);
  });
});

describe("TrainStep", () => {
  it("needs exactly one of image or patch", () => {
    expect(issues(TrainStep, step)).toEqual([]);
    expect(issues(TrainStep, { service: "checkout", patch: { spec: { replicas: 3 } } })).toEqual(
      [],
    );
    expect(issues(TrainStep, { service: "checkout" })).toEqual([
      ": needs exactly one of image or patch",
    ]);
    expect(issues(TrainStep, { ...step, patch: {} })).toEqual([
      ": needs exactly one of image or patch",
    ]);
    expect(issues(TrainStep, { ...step, image: " " })).toEqual([
      "image: must be an image reference",
    ]);
  });

  it("takes deployedWhen: a probe without severity, polled for 10m unless said", () => {
    const parsed = TrainStep.parse({
      ...step,
      deployedWhen: { http: "http://checkout.internal/version", expect: { json: { "$.v": "2" } } },
    });
    expect(parsed.deployedWhen).toEqual({
      http: "http://checkout.internal/version",
      expect: { status: 200, json: { "$.v": "2" } },
      within: "10m",
    });
    expect(
      issues(TrainStep, {
        ...step,
        deployedWhen: { http: "not a url", severity: "warning", within: "soon" },
      }),
    ).toEqual([
      "deployedWhen.http: must be an http(s) URL",
      "deployedWhen.within: must be a positive duration such as 30s, 5m, 1h or 30d",
      'deployedWhen: Unrecognized key: "severity" (severity)',
    ]);
  });

  it("checks the service name, guard window and regression factor", () => {
    expect(issues(TrainStep, { ...step, service: "Checkout" })).toHaveLength(1);
    expect(issues(TrainStep, { ...step, guardWindow: "0s" })).toHaveLength(1);
    expect(issues(TrainStep, { ...step, regression: { maxErrorRatioIncrease: 1 } })).toEqual([
      "regression.maxErrorRatioIncrease: must be greater than 1",
    ]);
    expect(
      TrainStep.safeParse({ ...step, regression: { maxErrorRatioIncrease: 1.5 } }).success,
    ).toBe(true);
  });
});

describe("HealthCheck", () => {
  it("defaults to expecting 200, fatal", () => {
    expect(HealthCheck.parse({ http: "http://a/healthz" })).toEqual({
      http: "http://a/healthz",
      expect: { status: 200 },
      severity: "fatal",
    });
    expect(HealthCheck.parse({ http: "https://a/", expect: {}, severity: "warning" })).toEqual({
      http: "https://a/",
      expect: { status: 200 },
      severity: "warning",
    });
  });

  it("refuses non-HTTP URLs, bad statuses, latencies and severities", () => {
    expect(issues(HealthCheck, { http: "ftp://a/x" })).toEqual(["http: must be an http(s) URL"]);
    expect(issues(HealthCheck, { http: "checkout/healthz" })).toEqual([
      "http: must be an http(s) URL",
    ]);
    expect(issues(HealthCheck, { http: "http://a", expect: { status: 700 } })).toHaveLength(1);
    expect(issues(HealthCheck, { http: "http://a", expect: { maxLatency: "fast" } })).toHaveLength(
      1,
    );
    expect(issues(HealthCheck, { http: "http://a", severity: "fatalish" })).toHaveLength(1);
    expect(issues(HealthCheck, { http: "http://a", expect: { statuss: 200 } })).toHaveLength(1);
  });

  it("asserts JSON values at JSON paths", () => {
    const json = (value: Record<string, unknown>) =>
      HealthCheck.safeParse({ http: "http://a", expect: { json: value } }).success;
    expect(json({ "$.status": "ok", "$.items[0].id": 3, "$.ready": true, "$.x": null })).toBe(true);
    expect(json({ "$.checks": { db: "up" }, "$.list": [1, "a"] })).toBe(true);
    expect(issues(HealthCheck, { http: "http://a", expect: { json: { status: "ok" } } })).toEqual([
      "expect.json.status: must be a JSON path like $.status or $.items[0].id",
    ]);
    expect(json({ "$.when": new Date(0) })).toBe(false);
  });
});

describe("isJsonPath", () => {
  it("accepts $ followed by .name and [index] steps only", () => {
    for (const ok of ["$", "$.status", "$.items[0].id", "$[2]", "$.a-b.c_d"]) {
      expect(isJsonPath(ok), ok).toBe(true);
    }
    for (const bad of ["", "a.b", "$.a..b", "$.", "$[x]", "$.a[0", "$ .a", "status"]) {
      expect(isJsonPath(bad), bad).toBe(false);
    }
  });

  it("accepts every path built from name and index steps", () => {
    const segment = fc.oneof(
      fc.stringMatching(/^[\w-]+$/).map((name) => `.${name}`),
      fc.nat({ max: 1000 }).map((index) => `[${index}]`),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        expect(isJsonPath(`$${segments.join("")}`)).toBe(true);
      }),
    );
  });
});
