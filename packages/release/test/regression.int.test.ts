import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrometheusClient } from "@safedeploy/prometheus";
import type { PrometheusClient } from "@safedeploy/prometheus";
import { ServiceDocument } from "@safedeploy/schema";
import { checkRegression, measureErrors, regressionQueries } from "@safedeploy/release";
import { startPrometheus, startTrafficExporter } from "@safedeploy/testing";
import type { PrivatePrometheus, TrafficExporter } from "@safedeploy/testing";

/*
 * A real Prometheus scraping a real exporter every second. checkout runs clean, then "deploys"
 * and fails 30% of requests; cart fails a steady 5% throughout. Windows are 6 s each side.
 */
let exporter: TrafficExporter;
let prometheus: PrivatePrometheus;
let client: PrometheusClient;
let deployedAt: Date;
const windowMs = 6_000;

const queries = (service: string) => ({
  errorQuery: `sum by (code) (increase(http_requests_total{service="${service}",code=~"5.."}[{{.window}}]))`,
  totalQuery: `sum(increase(http_requests_total{service="${service}"}[{{.window}}]))`,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  exporter = await startTrafficExporter({
    checkout: { rps: 200, errorRatio: 0 },
    cart: { rps: 200, errorRatio: 0.05 },
  });
  prometheus = await startPrometheus({ scrape: [{ jobName: "demo", targets: [exporter.target] }] });
  client = createPrometheusClient({ baseUrl: prometheus.url });
  await sleep(windowMs + 2_000);
  deployedAt = new Date();
  exporter.setTraffic("checkout", { rps: 200, errorRatio: 0.3 });
  await sleep(windowMs + 2_000);
}, 60_000);

afterAll(async () => {
  await prometheus.dispose();
  await exporter.close();
});

describe("measureErrors", () => {
  it("counts errors per series and the total before and after the deploy time", async () => {
    const measured = await measureErrors(client, queries("checkout"), {
      deployedAt,
      windowMs,
      now: new Date(),
    });
    expect(measured.before.series).toEqual([{ labels: { code: "500" }, errors: 0 }]);
    expect(measured.before.total).toBeGreaterThan(500);
    const afterErrors = measured.after.series[0]?.errors ?? 0;
    expect(afterErrors / measured.after.total).toBeGreaterThan(0.15);
    expect(measured.windows.after[0]).toBe(deployedAt.toISOString());
  });

  it("cuts the after window at now, and leaves it empty for a deploy not yet in the past", async () => {
    const measured = await measureErrors(client, queries("checkout"), {
      deployedAt,
      windowMs: 3_600_000,
      now: new Date(deployedAt.getTime() + 500),
    });
    expect(measured.after).toEqual({ series: [], total: 0 });
    expect(measured.windows.after[1]).toBe(new Date(deployedAt.getTime() + 500).toISOString());
  });
});

describe("checkRegression", () => {
  it("flags checkout: a new error series and a ratio above the rule", async () => {
    const result = await checkRegression(
      client,
      queries("checkout"),
      { maxErrorRatioIncrease: 2 },
      {
        deployedAt,
        windowMs,
        now: new Date(),
      },
    );
    expect(result.regressed).toBe(true);
    expect(result.findings.map((f) => f.kind).sort()).toEqual([
      "new-error-series",
      "ratio-increase",
    ]);
  });

  it("passes cart: the same steady error ratio before and after", async () => {
    const result = await checkRegression(
      client,
      queries("cart"),
      { maxErrorRatioIncrease: 2 },
      {
        deployedAt,
        windowMs,
        now: new Date(),
      },
    );
    expect(result).toMatchObject({ regressed: false, findings: [] });
    expect(result.before.ratio).toBeCloseTo(0.05, 1);
  });

  it("works from a service's SLO queries (rates, one unlabelled series)", async () => {
    const service = ServiceDocument.parse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Service",
      metadata: { name: "checkout", owner: "team" },
      spec: {
        slos: [
          {
            name: "availability",
            objective: 99,
            sli: {
              errorQuery:
                'sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))',
              totalQuery: 'sum(rate(http_requests_total{service="checkout"}[{{.window}}]))',
            },
          },
        ],
      },
    });
    const fromSlo = regressionQueries(service);
    expect(fromSlo).not.toBeNull();
    expect(regressionQueries(service, "latency")).toBeNull();
    if (fromSlo === null) return;
    const result = await checkRegression(
      client,
      fromSlo,
      { maxErrorRatioIncrease: 2 },
      {
        deployedAt,
        windowMs,
        now: new Date(),
      },
    );
    expect(result.regressed).toBe(true);
  });
});
