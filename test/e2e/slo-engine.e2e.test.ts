import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { AnyEnvelope, qualifiedName } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { budgetService } from "@safedeploy/service-budget";
import { collectorService } from "@safedeploy/service-collector";
import { createTestBus, startPrometheus, startTrafficExporter } from "@safedeploy/testing";
import { generateRules } from "./generate-rules.js";
import type { PrivatePrometheus, TestBus, TrafficExporter } from "@safedeploy/testing";

/*
 * The SLO engine against real parts: a traffic exporter, a Prometheus scraping it every second,
 * NATS, and the collector and budget services. Burn-rate windows are shortened through the Policy
 * (fast-burn 1.05× over 10s/5s, slow-burn 1.02× over 60s/10s). checkout's objective is 50%, so
 * 100% errors burn at 2×: the long window crosses 1.05× after ~5s of errors, while 20s of healthy
 * history keeps the 2m budget from being spent before fast-burn is seen.
 */

const policy = `apiVersion: safedeploy.dev/v1
kind: Policy
metadata: { name: default }
spec:
  burnRates:
    - { severity: fast-burn, factor: 1.05, long: 10s, short: 5s }
    - { severity: slow-burn, factor: 1.02, long: 60s, short: 10s }
`;

const slo = (service: string, name: string, objective: number, window: string, mode: string) => `
    - name: ${name}
      objective: ${objective}
      window: ${window}
      minEvents: 10
      sli:
        mode: ${mode}
        errorQuery: sum(rate(http_requests_total{service="${service}",code=~"5.."}[{{.window}}]))
        totalQuery: sum(rate(http_requests_total{service="${service}"}[{{.window}}]))`;

const service = (name: string, slos: string) => `---
apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name}, owner: team-test }
spec:
  slos:${slos}
`;

const catalogText =
  policy +
  service(
    "checkout",
    slo("checkout", "direct", 50, "2m", "direct") +
      slo("checkout", "recorded", 50, "2m", "recorded"),
  ) +
  service("idle", slo("idle", "availability", 50, "2m", "direct")) +
  service("drain", slo("drain", "availability", 90, "15s", "direct"));

let exporter: TrafficExporter;
let prometheus: PrivatePrometheus;
let harness: TestBus;
const services: ServiceHandle[] = [];
const evaluations: Envelope<"budget.evaluated">[] = [];
const snapshots: Envelope<"metrics.snapshot">[] = [];
let stopCollecting: (() => Promise<void>) | undefined;
let trafficStarted = 0;

const latest = (serviceName: string, sloName: string) =>
  evaluations
    .filter((e) => e.service === serviceName)
    .flatMap((e) => e.data.slos)
    .findLast((slo) => slo.slo === sloName);

async function waitForSeverity(
  serviceName: string,
  sloName: string,
  severity: string,
  timeoutMs: number,
) {
  const started = Date.now();
  while (latest(serviceName, sloName)?.severity !== severity) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `${serviceName}/${sloName} did not become ${severity} within ${timeoutMs} ms (last: ${JSON.stringify(latest(serviceName, sloName) ?? "nothing")})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Date.now() - started;
}

/** Collects every message of a stream from now on, through an ordered consumer. */
async function collect(stream: string, sink: (envelope: Envelope) => void) {
  const consumer = await harness.bus.js.consumers.get(qualifiedName(harness.bus.ns, stream));
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const message of messages) sink(AnyEnvelope.parse(message.json()));
  })();
  return async () => {
    await messages.close();
    await done;
  };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-e2e-slo-"));
  const catalog = join(dir, "catalog.yaml");
  writeFileSync(catalog, catalogText);
  const rules = await generateRules(catalog);

  trafficStarted = Date.now();
  exporter = await startTrafficExporter({
    checkout: { rps: 200, errorRatio: 0 },
    idle: { rps: 0, errorRatio: 0 },
    drain: { rps: 200, errorRatio: 0 },
  });
  prometheus = await startPrometheus({
    scrape: [{ jobName: "shop", targets: [exporter.target] }],
    rules,
  });
  harness = await createTestBus();
  await provision(harness.bus);
  const stopBudget = await collect("BUDGET", (e) => {
    if (e.type === "budget.evaluated") evaluations.push(e);
  });
  const stopMetrics = await collect("METRICS", (e) => {
    if (e.type === "metrics.snapshot") snapshots.push(e);
  });
  stopCollecting = async () => {
    await stopBudget();
    await stopMetrics();
  };
  const env = {
    NATS_URL: harness.url,
    PROMETHEUS_URL: prometheus.url,
    SAFEDEPLOY_CATALOG: catalog,
    SAFEDEPLOY_POLL_INTERVAL: "1s",
    SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
    SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
    LOG_LEVEL: "silent",
  };
  services.push(await startService(collectorService, { env }));
  services.push(await startService(budgetService, { env }));
}, 60_000);

afterAll(async () => {
  for (const handle of services) await handle.shutdown("test");
  await stopCollecting?.();
  await harness.cleanup();
  await prometheus.dispose();
  await exporter.close();
});

describe("SLO engine against a real Prometheus", () => {
  it("healthy traffic is normal in both modes; no traffic is no-data", async () => {
    await waitForSeverity("checkout", "direct", "normal", 30_000);
    await waitForSeverity("checkout", "recorded", "normal", 30_000);
    await waitForSeverity("idle", "availability", "no-data", 30_000);
    // Healthy history for the budget window before the errors start.
    while (Date.now() - trafficStarted < 20_000)
      await new Promise((resolve) => setTimeout(resolve, 200));
  }, 60_000);

  it("100% errors turn fast-burn within short window + poll interval + 2 scrapes, in both modes", async () => {
    exporter.setTraffic("checkout", { rps: 200, errorRatio: 1 });
    const elapsed = await waitForSeverity("checkout", "direct", "fast-burn", 20_000);
    // 5s short window + 1s poll + 2s of scrapes, plus a little for the pipeline itself.
    expect(elapsed).toBeLessThan(5_000 + 1_000 + 2_000 + 1_500);
    await waitForSeverity("checkout", "recorded", "fast-burn", 10_000);
    expect(latest("checkout", "direct")?.explanation).toMatch(
      /^fast-burn: burn [\d.]+ > 1.05 over 10s/,
    );
  }, 60_000);

  it("stopping the errors brings both back to normal after the short window", async () => {
    exporter.setTraffic("checkout", { rps: 200, errorRatio: 0 });
    await waitForSeverity("checkout", "direct", "normal", 20_000);
    await waitForSeverity("checkout", "recorded", "normal", 10_000);
  }, 60_000);

  it("a spent budget is exhausted", async () => {
    exporter.setTraffic("drain", { rps: 200, errorRatio: 1 });
    await waitForSeverity("drain", "availability", "exhausted", 20_000);
    expect(latest("drain", "availability")?.budgetRemaining).toBeLessThanOrEqual(0);
  }, 60_000);

  it("publishes the outage as unknown snapshots naming it, never a measurement, and recovers by itself", async () => {
    // From the moment it is gone: while shutting down it stops scraping but still answers queries,
    // and those honest answers (no samples: no-data) are not part of the outage.
    await prometheus.stop();
    const stoppedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const restartedAt = Date.now();
    await prometheus.start();
    const recovered = Date.now();
    while (!snapshots.some((s) => Date.parse(s.data.evaluatedAt) >= restartedAt)) {
      if (Date.now() - recovered > 20_000) throw new Error("the collector did not recover");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Jobs of the outage were retried while on time (2 intervals), then published as what they
    // are: every window unknown, naming the error. No snapshot claims a measurement of the gap.
    const inGap = snapshots.filter((s) => {
      const at = Date.parse(s.data.evaluatedAt);
      return at > stoppedAt + 1_000 && at < restartedAt - 3_000;
    });
    expect(inGap.length).toBeGreaterThan(0);
    for (const snapshot of inGap) {
      for (const window of snapshot.data.slos.flatMap((slo) => slo.windows)) {
        expect(window).toMatchObject({ status: "unknown", errors: null, total: null });
        expect(window.error).toMatch(/^Prometheus unreachable: /);
      }
    }
    // One per SLO and interval: the outage snapshot takes the id the real one would have had.
    expect(new Set(inGap.map((s) => s.id)).size).toBe(inGap.length);
    const metrics = await (await fetch(`${services[0]!.health.url}/metrics`)).text();
    expect(metrics).toMatch(/safedeploy_collector_prometheus_failures_total\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/safedeploy_collector_outage_snapshots_total\{[^}]*\} [1-9]/);
  }, 60_000);
});
