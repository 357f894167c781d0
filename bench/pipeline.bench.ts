// The collector → budget → policy/incident pipeline at fleet scale, in recorded mode, on real
// parts: an exporter serving the recorded SLI series of BENCH_SERVICES services × 3 SLOs (as the
// generated recording rules would), a real Prometheus scraping it, real NATS, and the collector,
// budget, policy and incident services as their own processes (one replica each, as deployed).
// In the same run and on the same NATS it measures plain JetStream async publishing with message
// ids, so the pipeline is reported as a share of the bus it sits on. Reports, per poll cycle, the
// time from interval start to the last evaluation published; the lag from query time to each
// evaluation; the gate's latency through the real policy service while the fleet is polled; and
// each service's peak RSS. Targets (issue 15) are printed as PASS or MISS.
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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
import { provision, requestCommand } from "@safedeploy/jetstream";
import { qualifiedName } from "@safedeploy/schema";
import {
  benchMachine,
  createTestBus,
  loadAverage,
  startPrometheus,
  targetLine,
  writeBenchResult,
} from "@safedeploy/testing";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const SLOS = 3;
const CYCLES = Number(process.env.BENCH_CYCLES ?? 5);
const WARMUP_CYCLES = Number(process.env.BENCH_WARMUP_CYCLES ?? 2);
const INTERVAL = process.env.BENCH_INTERVAL ?? "30s";
const INTERVAL_MS = Number.parseInt(INTERVAL, 10) * 1_000;
const GATE_CLIENTS = Number(process.env.BENCH_GATE_CLIENTS ?? 16);
/** Gate requests per second, all clients together. */
const GATE_RATE = Number(process.env.BENCH_GATE_RATE ?? 500);
const RAW_MESSAGES = Number(process.env.BENCH_RAW_MESSAGES ?? 50_000);
const TARGETS = {
  cycleSeconds: 5,
  lagP99Seconds: 5,
  shareOfRawPublishRate: 0.5,
  gateP99Ms: 20,
  peakRssMb: 300,
};
const PROCESSES = ["collector", "budget", "policy", "incident"] as const;
const windows = requiredWindows({ window: "30d" }, DEFAULT_BURN_RULES);
const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (values: readonly number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

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
  await sleep(1_000);
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

// 4. NATS, and the bus's own speed: plain async publishes with message ids (nats.js, 1,000 in
// flight) into a scratch stream, before anything else runs.
const harness = await createTestBus();
await provision(harness.bus);
const rawStream = qualifiedName(harness.bus.ns, "BENCH_RAW");
await harness.bus.jsm.streams.add({ name: rawStream, subjects: [`${harness.bus.ns.root}.raw.>`] });
const rawPayload = JSON.stringify({ padding: "x".repeat(600) }); // about an evaluation's size
const rawStarted = performance.now();
for (let i = 0; i < RAW_MESSAGES; i += 1_000) {
  await Promise.all(
    Array.from({ length: Math.min(1_000, RAW_MESSAGES - i) }, (_, j) =>
      harness.bus.js.publish(`${harness.bus.ns.root}.raw.svc-${(i + j) % SERVICES}`, rawPayload, {
        msgID: `raw-${i + j}`,
      }),
    ),
  );
}
const rawPerSecond = RAW_MESSAGES / ((performance.now() - rawStarted) / 1_000);
await harness.bus.jsm.streams.delete(rawStream);
log(`raw JetStream async publish with ids: ${Math.round(rawPerSecond).toLocaleString("en")} msg/s`);

// 5. An ordered consumer timing every evaluation.
const byInterval = new Map<
  string,
  { count: number; first: number; last: number; lags: number[] }
>();
const consumer = await harness.bus.js.consumers.get(qualifiedName(harness.bus.ns, "BUDGET"));
const messages = await consumer.consume({ max_messages: 1_000 });
void (async () => {
  for await (const message of messages) {
    // One message per service, holding the evaluation of each of its SLOs.
    const evaluation = message.json<{ data: { evaluatedAt: string; slos: unknown[] } }>();
    const publishedAt = message.info.timestampNanos / 1e6;
    const at = evaluation.data.evaluatedAt;
    const cycle = byInterval.get(at) ?? { count: 0, first: publishedAt, last: 0, lags: [] };
    const lag = publishedAt - Date.parse(at);
    cycle.lags.push(...evaluation.data.slos.map(() => lag));
    cycle.count += evaluation.data.slos.length;
    cycle.first = Math.min(cycle.first, publishedAt);
    cycle.last = Math.max(cycle.last, publishedAt);
    byInterval.set(at, cycle);
  }
})();

// 6. The services, one replica each, each its own process as deployed.
const env = {
  ...process.env,
  NATS_URL: harness.url,
  PROMETHEUS_URL: prometheus.url,
  SAFEDEPLOY_CATALOG: catalog,
  SAFEDEPLOY_HOME: dir,
  SAFEDEPLOY_POLL_INTERVAL: INTERVAL,
  SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
  SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
  LOG_LEVEL: "warn",
};
const loadBefore = loadAverage();
const started = Date.now();
const children = new Map<string, ChildProcess>();
for (const name of PROCESSES) {
  const main = new URL(`../services/${name}/dist/main.js`, import.meta.url).pathname;
  // BENCH_CPU_PROF=DIR writes each service's CPU profile there when it stops.
  const profile = process.env.BENCH_CPU_PROF;
  const flags = profile === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", join(profile, name)];
  // BENCH_SERVICE_NODE_OPTIONS: Node options for the services alone (heap limits, say).
  const nodeOptions = process.env.BENCH_SERVICE_NODE_OPTIONS;
  const child = spawn(process.execPath, [...flags, main], {
    env: nodeOptions === undefined ? env : { ...env, NODE_OPTIONS: nodeOptions },
    stdio: ["ignore", "inherit", "inherit"],
  });
  child.on("exit", (code, signal) => {
    if (children.has(name)) log(`${name} exited early (code ${code}, signal ${signal})`);
  });
  children.set(name, child);
}
const peakRssMb = (child: ChildProcess): number => {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1_024;
};
// CPU seconds a process used so far (user + system), from /proc: comparable between runs even
// on a busy machine, where wall-clock numbers are not.
const cpuTimes = (child: {
  readonly pid?: number | undefined;
}): { user: number; system: number } => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
};
const cpuSeconds = (child: { readonly pid?: number | undefined }): number => {
  const { user, system } = cpuTimes(child);
  return user + system;
};
// Ready once the policy answers the gate for a service it has evidence of.
for (;;) {
  const answer = await requestCommand(harness.bus, "gate.query", { service: "svc-0" }).catch(
    () => undefined,
  );
  if (answer !== undefined) break;
  await sleep(500);
}
log(`services answering in ${Date.now() - started} ms`);

// 7. While the fleet is polled: GATE_CLIENTS clients asking the gate at a fixed total rate, open
// loop (each asks on its schedule whether or not its last answer came), so a faster gate does not
// draw more load and runs compare; latency counts from the moment a request was due.
const gateLatencies: number[] = [];
let gateErrors = 0;
const polling = { on: true, measuring: false };
const gatePeriodMs = (1_000 * GATE_CLIENTS) / GATE_RATE;
const gateClients = Array.from({ length: GATE_CLIENTS }, async (_, client) => {
  const inFlight = new Set<Promise<void>>();
  const first = performance.now() + (client * gatePeriodMs) / GATE_CLIENTS;
  for (let n = 0; polling.on; n += 1) {
    const due = first + n * gatePeriodMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const measured = polling.measuring;
    const request = requestCommand(harness.bus, "gate.query", {
      service: `svc-${(n * GATE_CLIENTS + client) % SERVICES}`,
    }).then(
      () => {
        if (measured) gateLatencies.push(performance.now() - due);
      },
      () => {
        if (measured) gateErrors += 1;
      },
    );
    const tracked = request.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
});

// 8. Wait for CYCLES complete cycles after WARMUP_CYCLES full ones.
const expected = SERVICES * SLOS;
const complete = () => [...byInterval.entries()].filter(([, cycle]) => cycle.count >= expected);
const deadline = Date.now() + (WARMUP_CYCLES + CYCLES + 4) * INTERVAL_MS + 180_000;
// Two: the first cycle after a start also reads every key of every mirror from the server once
// and runs cold code; the steady state is what the targets are about (startup is timed above).
while (complete().length < WARMUP_CYCLES && Date.now() < deadline) await sleep(1_000);
polling.measuring = true;
// The rest of the machine's CPU in the same window: the bus, Prometheus and this process (the
// exporter, the gate clients and the timing consumer).
const pidsOf = (pattern: string): number[] =>
  execFileSync("pgrep", ["-f", pattern], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line !== "")
    .map(Number);
const others = {
  "nats-server": pidsOf("^(/usr/s?bin/)?nats-server"),
  prometheus: pidsOf(`web.listen-address=127.0.0.1:${prometheus.port}`),
  bench: [process.pid],
};
const othersCpu = () =>
  Object.fromEntries(
    Object.entries(others).map(([name, pids]) => [
      name,
      pids.reduce((sum, pid) => sum + cpuSeconds({ pid }), 0),
    ]),
  );
const othersAtStart = othersCpu();
// BENCH_TRAFFIC=1: what the bus carried while measured, by kind (where nats-server's CPU goes).
// Off by default: the tap is one more delivery of every message.
const traffic = new Map<string, number>();
const kindOf = (subject: string): string => {
  if (subject.startsWith("$JS.API.STREAM.INFO.")) {
    // By stream: which mirror's read barriers these are (KV_<prefix><bucket>).
    return `STREAM.INFO ${subject.slice(20).replace(harness.bus.ns.prefix, "")}`;
  }
  if (subject.startsWith("$JS.API.")) return subject.split(".").slice(2, 4).join(".");
  if (subject.startsWith("$JS.ACK.")) return "ack";
  if (subject.startsWith("$KV.")) return "kv-write";
  if (!subject.startsWith(`${harness.bus.ns.root}.`)) return "reply";
  const rest = subject.slice(harness.bus.ns.root.length + 1);
  return rest.startsWith("cmd.") ? rest : rest.split(".").slice(0, 2).join(".") || subject;
};
const tap = harness.bus.connection.subscribe(
  process.env.BENCH_TRAFFIC === "1" ? ">" : "_bench.off",
  {
    callback: (_error, message) => {
      const kind = kindOf(message.subject);
      traffic.set(kind, (traffic.get(kind) ?? 0) + 1);
    },
  },
);
const cpuAtStart = new Map([...children].map(([name, child]) => [name, cpuSeconds(child)]));
const systemAtStart = new Map([...children].map(([name, child]) => [name, cpuTimes(child).system]));
const measuringSince = performance.now();
// Only cycles that begin once measuring has: one already running overlapped the warm-up (the
// services' start, the previous cycle's tail), which made run-to-run noise of ±10 s.
const measuringFrom = Date.now();
const measuredCycles = () => complete().filter(([at]) => Date.parse(at) >= measuringFrom);
while (measuredCycles().length < CYCLES && Date.now() < deadline) await sleep(1_000);
polling.measuring = false;
const measuredSeconds = (performance.now() - measuringSince) / 1_000;
const cpuPerCycle = Object.fromEntries(
  [...children].map(([name, child]) => [
    name,
    round(
      ((cpuSeconds(child) - (cpuAtStart.get(name) ?? 0)) / measuredSeconds) * (INTERVAL_MS / 1_000),
      2,
    ),
  ]),
);
const othersAtEnd = othersCpu();
tap.unsubscribe();
const trafficPerInterval = Object.fromEntries(
  [...traffic]
    .sort(([, a], [, b]) => b - a)
    .map(([kind, count]) => [kind, Math.round((count / measuredSeconds) * (INTERVAL_MS / 1_000))]),
);
const otherCpuPerCycle = Object.fromEntries(
  Object.entries(othersAtEnd).map(([name, seconds]) => [
    name,
    round(((seconds - (othersAtStart[name] ?? 0)) / measuredSeconds) * (INTERVAL_MS / 1_000), 2),
  ]),
);
// How much of it the kernel spent for the process (socket reads and writes, mostly).
const systemShare = Object.fromEntries(
  [...children].map(([name, child]) => {
    const total = cpuSeconds(child) - (cpuAtStart.get(name) ?? 0);
    const system = cpuTimes(child).system - (systemAtStart.get(name) ?? 0);
    return [name, round(system / Math.max(total, 0.01), 2)];
  }),
);
polling.on = false;
await Promise.all(gateClients);

const measured = measuredCycles()
  .sort(([a], [b]) => a.localeCompare(b))
  .slice(0, CYCLES);
const cycles = measured.map(([at, cycle]) => ({
  interval: at,
  seconds: round((cycle.last - Date.parse(at)) / 1_000, 2),
  /** When its first evaluation was published: the collector had Prometheus's answers by then. */
  firstSeconds: round((cycle.first - Date.parse(at)) / 1_000, 2),
}));
const lags = measured.flatMap(([, cycle]) => cycle.lags);
const cycleSecondsMedian = quantile(
  cycles.map((cycle) => cycle.seconds),
  0.5,
);
const evaluationsPerSecond = expected / cycleSecondsMedian;
const rss = Object.fromEntries(
  [...children].map(([name, child]) => [name, round(peakRssMb(child), 0)]),
);
const result = {
  benchmark: "pipeline.collector-budget-policy-incident.recorded",
  services: SERVICES,
  slosPerService: SLOS,
  windows: windows.length,
  pollInterval: INTERVAL,
  evaluationsPerCycle: expected,
  cycles,
  /** Intervals begun while measuring that never got every evaluation (jobs dropped as late). */
  incompleteCycles: [...byInterval.entries()]
    .filter(
      ([at, cycle]) =>
        Date.parse(at) >= measuringFrom &&
        at < (cycles.at(-1)?.interval ?? "") &&
        cycle.count < expected,
    )
    .map(([interval, cycle]) => ({ interval, evaluations: cycle.count })),
  cycleSecondsMedian,
  lagSeconds: {
    p50: round(quantile(lags, 0.5) / 1_000, 2),
    p99: round(quantile(lags, 0.99) / 1_000, 2),
    max: round(quantile(lags, 1) / 1_000, 2),
  },
  evaluationsMeasured: lags.length,
  evaluationsPerSecond: Math.round(evaluationsPerSecond),
  /** Evaluation messages per second: one per service, holding its SLOs. */
  messagesPerSecond: Math.round(evaluationsPerSecond / SLOS),
  rawPublishPerSecond: Math.round(rawPerSecond),
  /** SLO evaluations per second against raw messages per second (issue 15's measure). */
  shareOfRawPublishRate: round(evaluationsPerSecond / rawPerSecond, 3),
  /** The same, counting evaluation messages instead of SLO evaluations. */
  messageShareOfRawPublishRate: round(evaluationsPerSecond / SLOS / rawPerSecond, 3),
  gate: {
    clients: GATE_CLIENTS,
    ratePerSecond: GATE_RATE,
    requests: gateLatencies.length,
    errors: gateErrors,
    p50Ms: round(quantile(gateLatencies, 0.5), 2),
    p99Ms: round(quantile(gateLatencies, 0.99), 2),
  },
  peakRssMb: rss,
  /** CPU seconds each service used per poll interval while measured. */
  cpuSecondsPerInterval: cpuPerCycle,
  /** The same for the rest of the machine: NATS, Prometheus and the bench itself. */
  otherCpuSecondsPerInterval: otherCpuPerCycle,
  /** Messages on the bus per interval, by kind (JetStream API call, ack, KV write, event, command). */
  busMessagesPerInterval: trafficPerInterval,
  /** The share of the services' CPU spent in the kernel on their behalf. */
  systemCpuShare: systemShare,
  targets: TARGETS,
  machine: benchMachine(loadBefore),
  node: process.version,
  at: new Date().toISOString(),
};
const checks: [string, boolean, string][] = [
  ["poll cycle", cycleSecondsMedian <= TARGETS.cycleSeconds, `${cycleSecondsMedian} s ≤ 5 s`],
  ["lag p99", result.lagSeconds.p99 <= TARGETS.lagP99Seconds, `${result.lagSeconds.p99} s ≤ 5 s`],
  [
    "share of raw publish rate",
    result.shareOfRawPublishRate >= TARGETS.shareOfRawPublishRate,
    `${result.evaluationsPerSecond}/s of ${result.rawPublishPerSecond}/s = ${result.shareOfRawPublishRate} ≥ 0.5`,
  ],
  [
    "gate p99 while polling",
    result.gate.p99Ms <= TARGETS.gateP99Ms,
    `${result.gate.p99Ms} ms ≤ 20 ms`,
  ],
  ...Object.entries(rss).map(([name, mb]): [string, boolean, string] => [
    `${name} peak RSS`,
    mb <= TARGETS.peakRssMb,
    `${mb} MB ≤ 300 MB`,
  ]),
];
writeBenchResult(new URL("results/pipeline.json", import.meta.url), {
  ...result,
  pass: checks.every(([, ok]) => ok),
});
log(JSON.stringify(result));
for (const [what, ok, detail] of checks) log(targetLine(ok, what, detail));

const stopping = [...children.values()].map(
  (child) => new Promise((resolve) => child.once("exit", resolve)),
);
const stopped = [...children.values()];
children.clear();
for (const child of stopped) child.kill("SIGTERM");
await Promise.race([Promise.all(stopping), sleep(15_000)]);
await messages.close();
await harness.cleanup();
await prometheus.dispose();
exporter.close();
process.exit(cycles.length >= CYCLES ? 0 : 1);
