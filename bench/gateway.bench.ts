// Gateway read latency with BENCH_SERVICES services in the read model, under a local load
// generator. Real parts: a fresh PostgreSQL database filled through appendBatch (the real
// projection, from real envelopes), the real gateway (buildGateway + listen) over it, and real
// NATS for `gate.query`, answered by the real policy service (in this process) from the budget
// evaluations it consumed from JetStream: every gate request is gateway → NATS → policy (two KV
// reads and the verdict) → gateway.
// The load generator runs in a worker thread: BENCH_CONCURRENCY keep-alive HTTP clients per
// endpoint for BENCH_DURATION seconds each, one endpoint after the other.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
// The audit, db, catalog and gateway packages are not dependencies of @safedeploy/bench: their
// built entry points are imported by path (pnpm bench builds first).
import { appendBatch, migrateAudit, snapshot } from "@safedeploy/audit";
import type { AuditMessage } from "@safedeploy/audit";
import { loadCatalog } from "@safedeploy/catalog";
import { createPool } from "@safedeploy/db";
import { buildGateway, tokenHash, tokenStore } from "@safedeploy/service-gateway";
import { provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import { policyService } from "@safedeploy/service-policy";
import { createEnvelope, messageId, qualifiedName, streamOfEventType } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { BrowserType } from "playwright-core";
import {
  budgetEvaluationEvent,
  createTestBus,
  createTestDatabase,
  gateReason,
  incidentOpenedEvent,
  testServiceEnv,
  verdictEvent,
} from "@safedeploy/testing";

interface Phase {
  readonly name: string;
  readonly paths: readonly string[];
  /** Each client sends back the ETag it last got (a polling dashboard): 304 counts as success. */
  readonly revalidate?: boolean;
}
interface Load {
  readonly port: number;
  readonly token: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly phase: Phase;
}
interface Measured {
  readonly latencies: number[];
  readonly errors: number;
  readonly statuses: Record<string, number>;
  readonly bytes: number[];
  readonly seconds: number;
}

if (!isMainThread) {
  // The load generator: `concurrency` clients, each one request at a time, over keep-alive sockets.
  const load = workerData as Load;
  const agent = new Agent({ keepAlive: true, maxSockets: load.concurrency });
  const get = (path: string, etag: string | undefined) =>
    new Promise<{ status: number; bytes: number; etag: string | undefined }>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: load.port,
          path,
          agent,
          headers: {
            authorization: `Bearer ${load.token}`,
            ...(etag === undefined ? {} : { "if-none-match": etag }),
          },
        },
        (response) => {
          let bytes = 0;
          response.on("data", (chunk: Buffer) => (bytes += chunk.length));
          response.on("end", () => {
            resolve({ status: response.statusCode ?? 0, bytes, etag: response.headers.etag });
          });
          response.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
  const latencies: number[] = [];
  const bytes: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let n = 0;
  const started = performance.now();
  const deadline = started + load.durationMs;
  await Promise.all(
    Array.from({ length: load.concurrency }, async () => {
      let etag: string | undefined;
      while (performance.now() < deadline) {
        const path = load.phase.paths[n++ % load.phase.paths.length] ?? "/";
        const t0 = performance.now();
        try {
          const answer = await get(path, load.phase.revalidate === true ? etag : undefined);
          latencies.push(performance.now() - t0);
          bytes.push(answer.bytes);
          statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
          if (answer.status === 200) etag = answer.etag;
          else if (!(answer.status === 304 && load.phase.revalidate === true)) errors += 1;
        } catch {
          errors += 1;
          statuses.network = (statuses.network ?? 0) + 1;
        }
      }
    }),
  );
  agent.destroy();
  const measured: Measured = {
    latencies,
    errors,
    statuses,
    bytes,
    seconds: (performance.now() - started) / 1_000,
  };
  parentPort?.postMessage(measured);
} else {
  await main();
}

async function main(): Promise<void> {
  const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
  const DURATION = Number(process.env.BENCH_DURATION ?? 15);
  const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const BATCH = 1_000;
  const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);
  const names = Array.from({ length: SERVICES }, (_, i) => `svc-${String(i).padStart(5, "0")}`);
  const troubled = (i: number) => i % 20 === 7; // ≈ 5%: an active incident and a pending proposal

  // 1. A fresh database, migrated, filled through the real projection.
  const database = await createTestDatabase();
  const pool = createPool({ connectionString: database.url, max: 10 });
  await migrateAudit(pool);
  const T0 = Date.parse("2026-11-24T09:00:00.000Z");
  const at = (seconds: number) => new Date(T0 + seconds * 1_000).toISOString();
  const byStream = new Map<string, Envelope[]>();
  const add = (e: Envelope) => {
    const stream = streamOfEventType(e.type);
    if (stream === undefined) throw new Error(`no stream for ${e.type}`);
    byStream.set(stream, [...(byStream.get(stream) ?? []), e]);
  };
  names.forEach((service, i) => {
    const bad = troubled(i);
    for (const [slo, severity] of [
      ["availability", bad ? "fast-burn" : "normal"],
      ["latency", i % 50 === 3 ? "slow-burn" : "normal"],
    ] as const) {
      add(
        budgetEvaluationEvent(service, at(i % 60), severity, {
          slo,
          budgetRemaining: bad ? 0.2 : 0.5 + (i % 50) / 100,
          burn1h: bad ? 20 : 0.5,
        }),
      );
    }
    add(verdictEvent(service, at(60 + (i % 60)), bad ? [gateReason("fast-burn", "burning")] : []));
    if (!bad) return;
    const incident = `INC-${service}`;
    const proposal = `PRP-${service}`;
    add(
      incidentOpenedEvent(service, incident, at(120 + (i % 60)), {
        causeId: messageId("budget.evaluated", service, "availability", at(i % 60)),
      }),
    );
    add(
      createEnvelope(
        {
          type: "governance.proposal-created",
          id: messageId("governance.proposal-created", proposal),
          service,
          data: {
            proposalId: proposal,
            kind: "rollback-rollout",
            incidentId: incident,
            causeId: messageId("incidents.opened", incident),
            createdAt: at(180 + (i % 60)),
            summary: `roll back ${service}`,
            plan: { action: "git-revert", path: `envs/prod/${service}` },
          },
        },
        { source: "proposal", time: at(180 + (i % 60)) },
      ),
    );
  });
  const filling = performance.now();
  let stored = 0;
  // One writer per stream (each stream's chain is appended under its own lock), in batches.
  await Promise.all(
    [...byStream].map(async ([stream, envelopes]) => {
      for (let from = 0; from < envelopes.length; from += BATCH) {
        const messages: AuditMessage[] = envelopes.slice(from, from + BATCH).map((e, k) => ({
          seq: from + k + 1,
          subject: `bench.${e.type}.${e.service}`,
          headers: { "Nats-Msg-Id": [e.id], "Sd-Type": [e.type] },
          data: JSON.stringify(e),
          time: e.time,
        }));
        const report = await appendBatch(pool, stream, messages);
        if (report.refused.length > 0)
          throw new Error(`refused: ${JSON.stringify(report.refused)}`);
        stored += report.stored;
      }
    }),
  );
  await pool.query("ANALYZE");
  const fillSeconds = (performance.now() - filling) / 1_000;
  log(
    `read model: ${stored.toLocaleString("en")} envelopes appended in ${fillSeconds.toFixed(1)} s`,
  );

  // What one snapshot costs in the read model alone (SQL and assembly), and serialized, in-process.
  const direct: number[] = [];
  const serialized: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    const snap = await snapshot(pool);
    const t1 = performance.now();
    JSON.stringify(snap);
    direct.push(t1 - t0);
    serialized.push(performance.now() - t1);
  }
  const median = (values: number[]) =>
    values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const snapshotInProcessMs = {
    readModel: Math.round(median(direct)),
    jsonStringify: Math.round(median(serialized)),
  };
  log(
    `snapshot in process: read model ${snapshotInProcessMs.readModel} ms, JSON.stringify ${snapshotInProcessMs.jsonStringify} ms (median of 5)`,
  );

  // 2. The catalog of the same services, NATS with a gate.query responder, and the gateway.
  const dir = mkdtempSync(join(tmpdir(), "sd-bench-gateway-"));
  const catalogFile = join(dir, "catalog.yaml");
  writeFileSync(
    catalogFile,
    names
      .map(
        (name) => `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name}, owner: bench }
spec:
  slos:
    - name: availability
      objective: 99.9
      sli: { errorQuery: "e{service=\\"${name}\\"}[{{.window}}]", totalQuery: "t{service=\\"${name}\\"}[{{.window}}]" }
    - name: latency
      objective: 99
      sli: { errorQuery: "le{service=\\"${name}\\"}[{{.window}}]", totalQuery: "lt{service=\\"${name}\\"}[{{.window}}]" }
  rollback: { strategy: git-revert, path: envs/prod/${name} }`,
      )
      .join("\n---\n"),
  );
  const loaded = await loadCatalog(catalogFile);
  if (!loaded.ok) throw new Error(`catalog: ${JSON.stringify(loaded.errors.slice(0, 3))}`);
  const harness = await createTestBus();
  await provision(harness.bus);
  const starting = performance.now();
  const policy = await startService(policyService, {
    env: testServiceEnv(harness, {
      SAFEDEPLOY_CATALOG: catalogFile,
      HEALTH_PORT: "0",
      LOG_LEVEL: "warn",
    }),
  });
  // The evidence the policy decides from: each SLO's latest evaluation, through JetStream.
  const evaluations = names.flatMap((service, i) =>
    (["availability", "latency"] as const).map((slo) =>
      budgetEvaluationEvent(
        service,
        new Date().toISOString(),
        troubled(i) && slo === "availability" ? "fast-burn" : "normal",
        {
          slo,
          budgetRemaining: troubled(i) ? 0.2 : 0.6,
          burn1h: troubled(i) ? 20 : 0.5,
        },
      ),
    ),
  );
  for (const evaluation of evaluations) await publishEvent(harness.bus, evaluation);
  const policyConsumer = await harness.bus.jsm.consumers.info(
    qualifiedName(harness.bus.ns, "BUDGET"),
    qualifiedName(harness.bus.ns, "policy"),
  );
  for (let info = policyConsumer; info.num_pending + info.num_ack_pending > 0;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    info = await harness.bus.jsm.consumers.info(
      qualifiedName(harness.bus.ns, "BUDGET"),
      qualifiedName(harness.bus.ns, "policy"),
    );
  }
  const policySeconds = (performance.now() - starting) / 1_000;
  log(
    `policy service: started and consumed ${evaluations.length.toLocaleString("en")} budget evaluations in ${policySeconds.toFixed(1)} s`,
  );
  const token = "bench-viewer-token";
  const app = await buildGateway({
    pool,
    catalog: loaded.catalog,
    tokens: tokenStore([{ name: "bench", role: "viewer", sha256: tokenHash(token) }]),
    sendCommand: (command, body) => requestCommand(harness.bus, command, body),
    clock: { now: () => new Date() },
    rateLimitPerMinute: 1_000_000_000,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  log(`gateway on 127.0.0.1:${port}, ${loaded.catalog.services.length} services in the catalog`);

  // 3. The load, one endpoint at a time.
  const shuffled = names
    .map((name, i) => ({ name, k: (i * 7_919) % SERVICES }))
    .sort((a, b) => a.k - b.k)
    .map(({ name }) => name);
  const phases: Phase[] = [
    { name: "GET /v1/snapshot", paths: ["/v1/snapshot"] },
    { name: "GET /v1/snapshot?view=summary", paths: ["/v1/snapshot?view=summary"] },
    { name: "GET /v1/snapshot, If-None-Match", paths: ["/v1/snapshot"], revalidate: true },
    { name: "GET /v1/services?limit=50", paths: ["/v1/services?limit=50"] },
    { name: "GET /v1/services/{name}", paths: shuffled.map((n) => `/v1/services/${n}`) },
    { name: "GET /v1/services/{name}/gate", paths: shuffled.map((n) => `/v1/services/${n}/gate`) },
  ];
  const percentile = (sorted: readonly number[], p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  const round = (ms: number) => Math.round(ms * 100) / 100;
  const endpoints: Record<string, unknown> = {};
  for (const phase of phases) {
    const load: Load = {
      port,
      token,
      concurrency: CONCURRENCY,
      durationMs: DURATION * 1_000,
      phase,
    };
    const measured = await new Promise<Measured>((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: load });
      worker.once("message", (message: Measured) => {
        resolve(message);
      });
      worker.once("error", reject);
    });
    const sorted = [...measured.latencies].sort((a, b) => a - b);
    const bytes =
      measured.bytes.reduce((sum, b) => sum + b, 0) / Math.max(1, measured.bytes.length);
    const summary = {
      requests: measured.latencies.length,
      errors: measured.errors,
      statuses: measured.statuses,
      requestsPerSecond: Math.round((measured.latencies.length / measured.seconds) * 10) / 10,
      latencyMs: {
        p50: round(percentile(sorted, 0.5)),
        p90: round(percentile(sorted, 0.9)),
        p99: round(percentile(sorted, 0.99)),
        max: round(sorted.at(-1) ?? 0),
      },
      responseBytes: Math.round(bytes),
    };
    endpoints[phase.name] = summary;
    log(
      `${phase.name.padEnd(30)} ${String(summary.requests).padStart(7)} req ${String(summary.requestsPerSecond).padStart(8)} req/s  p50 ${summary.latencyMs.p50} ms  p90 ${summary.latencyMs.p90} ms  p99 ${summary.latencyMs.p99} ms  max ${summary.latencyMs.max} ms  errors ${summary.errors}  ${(summary.responseBytes / 1_000).toFixed(1)} kB/response`,
    );
  }

  const dashboard = await measureDashboard(`http://127.0.0.1:${port}/`, token);
  if (dashboard !== null) {
    log(
      `dashboard in Chromium: services table in ${dashboard.tableMs} ms, next page in ${dashboard.nextPageMs} ms, longest task ${dashboard.longestTaskMs} ms, ${dashboard.rows} rows, JS heap ${dashboard.jsHeapMb} MB`,
    );
  }

  const result = {
    benchmark: "gateway.read-latency",
    services: SERVICES,
    slosPerService: 2,
    activeIncidents: names.filter((_, i) => troubled(i)).length,
    pendingProposals: names.filter((_, i) => troubled(i)).length,
    envelopesAppended: stored,
    fillSeconds: Math.round(fillSeconds * 10) / 10,
    concurrency: CONCURRENCY,
    secondsPerEndpoint: DURATION,
    snapshotInProcessMs,
    gateQuery: "the real policy service over real NATS, after consuming every budget evaluation",
    policyReadySeconds: Math.round(policySeconds * 10) / 10,
    loadGenerator: "worker thread, node:http keep-alive Agent",
    endpoints,
    dashboard,
    node: process.version,
    at: new Date().toISOString(),
  };
  writeFileSync(
    new URL("results/gateway.json", import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );

  await app.close();
  await policy.shutdown("bench");
  await harness.cleanup();
  await pool.end();
  await database.drop();
  const failed = Object.values(endpoints).some((e) => (e as { errors: number }).errors > 0);
  process.exit(failed ? 1 : 0);
}

/**
 * The dashboard over the same gateway in Debian's Chromium (playwright-core, the dashboard
 * package's): from signing in to the services table drawn, one page forward, the longest task
 * the main thread ran meanwhile (a frozen page shows as one long task) and the JS heap. Null
 * where Chromium is not installed.
 */
interface InPage {
  longestTaskMs: number;
  rows: number;
  jsHeapBytes: number;
  range: string | null;
}

async function measureDashboard(url: string, token: string) {
  const chromiumPath = "/usr/bin/chromium";
  if (!existsSync(chromiumPath)) return null;
  const require = createRequire(new URL("../packages/dashboard/package.json", import.meta.url));
  const { chromium } = require("playwright-core") as { chromium: BrowserType };
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--enable-precise-memory-info"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // In-page code as strings: this file is compiled without the DOM's types.
    await page.addInitScript(`
      window.longestTask = { ms: 0 };
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries())
          window.longestTask.ms = Math.max(window.longestTask.ms, entry.duration);
      }).observe({ type: "longtask", buffered: true });`);
    await page.goto(url);
    await page.getByLabel("API token").fill(token);
    const signedIn = performance.now();
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForSelector('[data-testid="service"]', { timeout: 120_000 });
    const tableMs = Math.round(performance.now() - signedIn);
    const range = '[data-testid="services-range"]';
    const firstRange = await page.textContent(range);
    const next = performance.now();
    await page.click('[data-testid="services-next"]');
    await page.waitForFunction(
      `document.querySelector('${range}')?.textContent !== ${JSON.stringify(firstRange)}`,
    );
    const nextPageMs = Math.round(performance.now() - next);
    const measured = await page.evaluate<InPage>(`({
      longestTaskMs: window.longestTask.ms,
      rows: document.querySelectorAll('[data-testid="service"]').length,
      jsHeapBytes: performance.memory?.usedJSHeapSize ?? 0,
      range: document.querySelector('${range}')?.textContent ?? null,
    })`);
    return {
      tableMs,
      nextPageMs,
      longestTaskMs: Math.round(measured.longestTaskMs),
      rows: measured.rows,
      range: measured.range,
      jsHeapMb: Math.round(measured.jsHeapBytes / 1e5) / 10,
    };
  } finally {
    await browser.close();
  }
}
