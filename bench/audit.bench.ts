// Audit ingest: a burst of BENCH_MESSAGES (default 100,000) mixed envelopes — SLI snapshots,
// budget evaluations, incident and governance events, a few dead letters — published to real
// JetStream across every stream, then the real audit service (services/audit) started and timed
// until every message is stored (hash chain, read model, anchors). In the same run, the same rows
// are inserted with a plain batched `INSERT … ON CONFLICT DO NOTHING` into a fresh table shaped
// like the audit log. Reports ratio = plain time / audit time (target ≥ 50 %).
import { migrateAudit } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import { createEnvelope, deadLetterSubject, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { auditService } from "@safedeploy/service-audit";
import {
  benchMachine,
  budgetEvaluationEvent,
  createTestBus,
  createTestDatabase,
  gateReason,
  incidentOpenedEvent,
  loadAverage,
  sliSnapshotEvent,
  targetLine,
  verdictEvent,
  writeBenchResult,
} from "@safedeploy/testing";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const SERVICES = 200;
const BATCH = 500;
const TARGET_RATIO = 0.5;
const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

const WINDOWS = ["5m", "30m", "1h", "6h", "3d", "30d"];
const base = Date.parse("2026-01-01T00:00:00.000Z");

function snapshot(service: string, at: string): Envelope<"metrics.snapshot"> {
  return sliSnapshotEvent(
    service,
    at,
    WINDOWS.map((window) => ({
      window,
      errorQuery: `sum(rate(errors{service="${service}"}[${window}]))`,
      totalQuery: `sum(rate(total{service="${service}"}[${window}]))`,
      errors: 1,
      total: 1000,
      status: "ok" as const,
    })),
  );
}

function transition(service: string, incidentId: string, at: string) {
  return createEnvelope(
    {
      type: "incidents.transitioned",
      id: messageId("incidents.transitioned", incidentId, "resolved", at),
      service,
      data: {
        incidentId,
        from: "detected",
        to: "resolved",
        at,
        actor: "ana",
        reason: "fixed",
      },
    },
    { source: "incident", time: at },
  );
}

function proposal(service: string, incidentId: string, at: string) {
  const proposalId = `P-${incidentId}`;
  return createEnvelope(
    {
      type: "governance.proposal-created",
      id: messageId("governance.proposal-created", proposalId),
      service,
      data: {
        proposalId,
        kind: "rollback-rollout",
        incidentId,
        causeId: incidentId,
        createdAt: at,
        summary: `roll back ${service}`,
        plan: { action: "git-revert", path: `envs/prod/${service}` },
      },
    },
    { source: "proposal", time: at },
  );
}

function approval(service: string, proposalId: string, at: string) {
  return createEnvelope(
    {
      type: "governance.proposal-approved",
      id: messageId("governance.proposal-approved", proposalId, "ana"),
      service,
      data: {
        proposalId,
        by: "ana",
        at,
        reason: "looks right",
        approvals: 1,
        required: 1,
        approved: true,
      },
    },
    { source: "proposal", time: at },
  );
}

function pollJob(i: number, at: string) {
  const end = new Date(Date.parse(at) + 30_000).toISOString();
  return createEnvelope(
    {
      type: "metrics.poll-requested",
      id: messageId("metrics.poll-requested", `scope-${i}`, at),
      service: "collector",
      data: { intervalStart: at, intervalEnd: end, mode: "direct" },
    },
    { source: "collector", time: at },
  );
}

/**
 * Message i of the burst, in the proportions a running control plane stores them: per poll an
 * SLI snapshot and its budget evaluation for every SLO (88 %), verdicts when a gate changes (5 %),
 * incidents opened and resolved (2 %), proposals and approvals (2 %), poll jobs (1 %), and more
 * evaluations of a second SLO (2 %).
 */
function message(i: number): Envelope {
  const service = `svc-${i % SERVICES}`;
  const at = new Date(base + i * 1_000).toISOString();
  const slot = i % 100;
  if (slot < 44) return snapshot(service, at);
  if (slot < 88) return budgetEvaluationEvent(service, at, i % 7 === 0 ? "fast-burn" : "normal");
  if (slot < 93) return verdictEvent(service, at, i % 3 === 0 ? [gateReason("fast-burn")] : []);
  // An incident is resolved by the next message, before its service's next one opens.
  // Incidents spread over every service in turn (each has a few in the burst).
  const turn = `svc-${Math.floor(i / 100) % SERVICES}`;
  if (slot === 93) return incidentOpenedEvent(turn, `INC-${i}`, at);
  if (slot === 94) return transition(turn, `INC-${i - 1}`, at);
  if (slot === 95) return proposal(service, `INC-${i - 2}`, at);
  if (slot === 96) return approval(`svc-${(i - 1) % SERVICES}`, `P-INC-${i - 3}`, at);
  if (slot === 97) return pollJob(i, at);
  return budgetEvaluationEvent(service, at, "slow-burn", { slo: "latency" });
}

// 1. The burst, published before the audit service starts (a backlog, as after an outage).
const harness = await createTestBus();
await provision(harness.bus);
const database = await createTestDatabase();
const pool = createPool({ connectionString: database.url, max: 4, applicationName: "bench" });
await migrateAudit(pool);
let published = 0;
const expected = new Map<string, number>();
const stored = (stream: string) => expected.set(stream, (expected.get(stream) ?? 0) + 1);
const publishStarted = Date.now();
const WINDOW = 512;
for (let start = 0; start < MESSAGES; start += WINDOW) {
  const count = Math.min(WINDOW, MESSAGES - start);
  await Promise.all(
    Array.from({ length: count }, async (_, k) => {
      const i = start + k;
      if (i % 1_000 === 999) {
        // A dead letter: anyone may publish there; stored, never projected.
        await harness.bus.js.publish(
          deadLetterSubject(harness.bus.ns, "METRICS", "bench"),
          JSON.stringify({ junk: i }),
          { msgID: `dlq-${i}` },
        );
        stored("DEADLETTER");
      } else {
        const ack = await publishEvent(harness.bus, message(i));
        stored(ack.stream.slice(harness.bus.ns.prefix.length));
      }
      published += 1;
    }),
  );
}
log(`published ${published} messages in ${Date.now() - publishStarted} ms`);

// 2. The audit service, timed from start until every message is in the audit log.
const env = {
  NATS_URL: harness.url,
  DATABASE_URL: database.url,
  SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
  SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
  LOG_LEVEL: "warn",
};
// Each timed phase starts from a checkpoint, so neither pays for the other's WAL (a checkpoint
// falling into one phase moved the ratio by ±10 points). Needs a superuser; skipped otherwise.
const checkpoint = () => pool.query("CHECKPOINT").catch(() => undefined);
await checkpoint();
const loadBefore = loadAverage();
const auditStarted = performance.now();
const audit = await startService(auditService(), { env });
const count = async (table: string) =>
  Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n ?? 0);
const deadline = Date.now() + 600_000;
// When each stream's last message was in the log (ms after the service started).
const streamMs: Record<string, number> = {};
for (;;) {
  const { rows } = await pool.query<{ stream: string; n: number }>(
    "SELECT stream, count(*)::int AS n FROM audit_log GROUP BY stream",
  );
  for (const row of rows) {
    if (streamMs[row.stream] === undefined && row.n >= (expected.get(row.stream) ?? 0)) {
      streamMs[row.stream] = Math.round(performance.now() - auditStarted);
    }
  }
  if (rows.reduce((sum, row) => sum + row.n, 0) >= MESSAGES) break;
  if (Date.now() > deadline) throw new Error("the audit service did not store the burst in 10 min");
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const auditMs = performance.now() - auditStarted;
await audit.shutdown("bench done");
log(`audit service stored ${MESSAGES} in ${auditMs.toFixed(0)} ms`);

// 3. The same rows, plain: batched INSERT … ON CONFLICT DO NOTHING into a table like audit_log.
await pool.query("DROP TABLE IF EXISTS audit_plain");
await pool.query(
  "CREATE TABLE audit_plain (LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)",
);
const rows = (
  await pool.query<Record<string, unknown>>(
    `SELECT stream, seq, position, subject, message_id, type, service, headers::text AS headers,
       payload::text AS payload, stored_at, prev_hash, hash, hash_version
     FROM audit_log ORDER BY stream, position`,
  )
).rows;
const column = (chunk: Record<string, unknown>[], name: string) => chunk.map((r) => r[name]);
await checkpoint();
const plainStarted = performance.now();
for (let start = 0; start < rows.length; start += BATCH) {
  const chunk = rows.slice(start, start + BATCH);
  await pool.query(
    `INSERT INTO audit_plain (stream, seq, position, subject, message_id, type, service, headers,
       payload, stored_at, prev_hash, hash, hash_version)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
       $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::timestamptz[], $11::text[],
       $12::text[], $13::smallint[])
     ON CONFLICT DO NOTHING`,
    [
      "stream",
      "seq",
      "position",
      "subject",
      "message_id",
      "type",
      "service",
      "headers",
      "payload",
      "stored_at",
      "prev_hash",
      "hash",
      "hash_version",
    ].map((name) => column(chunk, name)),
  );
}
const plainMs = performance.now() - plainStarted;
const plainRows = await count("audit_plain");
log(`plain INSERT … ON CONFLICT stored ${plainRows} in ${plainMs.toFixed(0)} ms`);

const ratio = plainMs / auditMs;
const pass = ratio >= TARGET_RATIO && plainRows === MESSAGES;
const result = {
  benchmark: "audit.ingest",
  messages: MESSAGES,
  mix: "44% metrics.snapshot, 46% budget.evaluated, 5% governance.verdict, 1% incidents.opened, 1% incidents.transitioned (resolved), 1% governance.proposal-created, 1% governance.proposal-approved, 1% metrics.poll-requested; 0.1% dead letters in place of evaluations",
  auditMs: Math.round(auditMs),
  auditMessagesPerSecond: Math.round(MESSAGES / (auditMs / 1_000)),
  perStream: Object.fromEntries(
    [...expected.entries()].map(([stream, messages]) => [
      stream,
      { messages, storedAfterMs: streamMs[stream] ?? null },
    ]),
  ),
  plainMs: Math.round(plainMs),
  plainMessagesPerSecond: Math.round(MESSAGES / (plainMs / 1_000)),
  ratio: Number(ratio.toFixed(3)),
  target: { ratio: TARGET_RATIO },
  pass,
  machine: benchMachine(loadBefore),
  node: process.version,
  at: new Date().toISOString(),
};
writeBenchResult(new URL("results/audit.json", import.meta.url), result);
log(JSON.stringify(result));
log(
  targetLine(
    pass,
    "audit ingest",
    `${(ratio * 100).toFixed(1)} % of a plain batched INSERT (target ≥ ${TARGET_RATIO * 100} %)`,
  ),
);

await pool.end();
await database.drop();
await harness.cleanup();
process.exit(0);
