// The collector → budget pipeline at fleet scale, in recorded mode, on real parts: an exporter
// serving the recorded SLI series of BENCH_SERVICES services × 3 SLOs (as the generated recording
// rules would), a real Prometheus scraping it, real NATS, the collector and budget services.
// Reports the time per poll cycle (interval start → last evaluation published) and the lag from
// query time to each published evaluation (p50, p99).
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_BURN_RULES,
  errorRatioRecord,
  requiredWindows,
  totalRateRecord,
} from "@safedeploy/core";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import { qualifiedName } from "@safedeploy/schema";
import { budgetService } from "@safedeploy/service-budget";
import { collectorService } from "@safedeploy/service-collector";
import { createTestBus, startPrometheus } from "@safedeploy/testing";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const SLOS = 3;
const CYCLES = Number(process.env.BENCH_CYCLES ?? 3);
const INTERVAL = process.env.BENCH_INTERVAL ?? "30s";
const INTERVAL_MS = Number.parseInt(INTERVAL, 10) * 1_000;
const windows = requiredWindows({ window: "30d" }, DEFAULT_BURN_RULES);
const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

// 1. The exporter: every recorded series of every SLO, as `safedeploy rules generate` names them.
const lines: string[] = [];
for (const window of windows) {
  for (let s = 0; s < SERVICES; s++) {
    for (let k = 0; k < SLOS; k++) {
      const labels = `{sloth_service="svc-${s}",sloth_slo="slo-${k}"}`;
      lines.push(`${errorRatioRecord(window)}${labels} ${((s * 7 + k) % 100) / 100_000}`);
      lines.push(`${totalRateRecord(window)}${labels} ${10 + (s % 5)}`);
    }
  }
}
const body = `${lines.join("\n")}\n`;
const exporter = createServer((_request, response) => {
  response.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end(body);
});
await new Promise<void>((resolve) => exporter.listen(0, "127.0.0.1", resolve));
const target = `127.0.0.1:${(exporter.address() as AddressInfo).port}`;
log(
  `exporter: ${lines.length.toLocaleString("en")} series, ${(body.length / 1e6).toFixed(1)} MB per scrape`,
);

// 2. Prometheus scraping it.
const prometheus = await startPrometheus({
  scrape: [{ jobName: "recorded", targets: [target], interval: "10s" }],
});
for (;;) {
  const answer = (await (
    await fetch(`${prometheus.url}/api/v1/query?query=count(${errorRatioRecord("5m")})`)
  ).json()) as { data: { result: { value: [number, string] }[] } };
  if (Number(answer.data.result[0]?.value[1] ?? 0) === SERVICES * SLOS) break;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}
log("prometheus has every series");

// 3. The catalog: every SLO in recorded mode.
const dir = mkdtempSync(join(tmpdir(), "sd-bench-"));
const catalog = join(dir, "catalog.yaml");
const docs: string[] = [];
for (let s = 0; s < SERVICES; s++) {
  const slos = Array.from(
    { length: SLOS },
    (_, k) => `    - name: slo-${k}
      objective: 99.9
      sli: { mode: recorded, errorQuery: "e[{{.window}}]", totalQuery: "t[{{.window}}]" }`,
  ).join("\n");
  docs.push(`apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: svc-${s}, owner: bench }
spec:
  slos:
${slos}`);
}
writeFileSync(catalog, docs.join("\n---\n"));

// 4. NATS, and an ordered consumer timing every evaluation.
const harness = await createTestBus();
await provision(harness.bus);
const byInterval = new Map<string, { count: number; last: number; lags: number[] }>();
const consumer = await harness.bus.js.consumers.get(qualifiedName(harness.bus.ns, "BUDGET"));
const messages = await consumer.consume({ max_messages: 1_000 });
void (async () => {
  for await (const message of messages) {
    const evaluation = message.json<{ data: { evaluatedAt: string } }>();
    const publishedAt = message.info.timestampNanos / 1e6;
    const at = evaluation.data.evaluatedAt;
    const cycle = byInterval.get(at) ?? { count: 0, last: 0, lags: [] };
    cycle.lags.push(publishedAt - Date.parse(at));
    cycle.count += 1;
    cycle.last = Math.max(cycle.last, publishedAt);
    byInterval.set(at, cycle);
  }
})();

// 5. The services, one replica each, in this process.
const env = {
  NATS_URL: harness.url,
  PROMETHEUS_URL: prometheus.url,
  SAFEDEPLOY_CATALOG: catalog,
  SAFEDEPLOY_POLL_INTERVAL: INTERVAL,
  SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
  SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
  LOG_LEVEL: "warn",
};
const started = Date.now();
const collector = await startService(collectorService, { env });
const budget = await startService(budgetService, { env });
log(`services started in ${Date.now() - started} ms`);

// 6. Wait for CYCLES complete cycles (after the first, partial one).
const expected = SERVICES * SLOS;
const complete = () => [...byInterval.entries()].filter(([, cycle]) => cycle.count >= expected);
const deadline = Date.now() + (CYCLES + 3) * INTERVAL_MS + 120_000;
while (complete().length < CYCLES + 1 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}
// The first cycle began before the services did: measure only the full ones after it.
const measured = complete()
  .sort(([a], [b]) => a.localeCompare(b))
  .slice(1);
const cycles = measured.map(([at, cycle]) => ({
  interval: at,
  seconds: (cycle.last - Date.parse(at)) / 1_000,
}));
const lags = measured.flatMap(([, cycle]) => cycle.lags);
const sorted = [...lags].sort((a, b) => a - b);
const percentile = (p: number) =>
  (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) / 1_000;
const result = {
  benchmark: "pipeline.collector-budget.recorded",
  services: SERVICES,
  slosPerService: SLOS,
  windows: windows.length,
  pollInterval: INTERVAL,
  evaluationsPerCycle: expected,
  cycles,
  cycleSecondsMedian:
    cycles.map((c) => c.seconds).sort((a, b) => a - b)[Math.floor(cycles.length / 2)] ?? null,
  lagSeconds: { p50: percentile(0.5), p99: percentile(0.99), max: percentile(1) },
  evaluationsMeasured: lags.length,
  node: process.version,
  at: new Date().toISOString(),
};
writeFileSync(
  new URL("results/pipeline.json", import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
log(JSON.stringify(result));

await collector.shutdown("bench done");
await budget.shutdown("bench done");
await messages.close();
await harness.cleanup();
await prometheus.dispose();
exporter.close();
process.exit(cycles.length >= CYCLES ? 0 : 1);
