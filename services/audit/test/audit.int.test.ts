import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getIncident, verifyChain } from "@safedeploy/audit";
import { createPool, query } from "@safedeploy/db";
import { auditAnchors, provision, publishEvent } from "@safedeploy/jetstream";
import { ConfigError, startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { STREAMS, deadLetterSubject, qualifiedName } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import {
  createTestBus,
  createTestDatabase,
  sliSnapshotEvent,
  testServiceEnv,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import { incidentStory } from "../../../packages/audit/test/fixtures.js";
import { auditService } from "../src/service.js";

/** With the three incident stories, the DEADLETTER and the duplicates: just over 10,000. */
const SNAPSHOTS = 9_960;
let harness: TestBus;
let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
const replicas: ServiceHandle[] = [];

const start = async (): Promise<ServiceHandle> => {
  const handle = await startService(
    auditService({ maxBatch: 50, lingerMs: 10, backoffMs: [100] }),
    {
      env: testServiceEnv(harness, { DATABASE_URL: database.url, LOG_LEVEL: "silent" }),
    },
  );
  replicas.push(handle);
  return handle;
};

function snapshotEvent(n: number): Envelope<"metrics.snapshot"> {
  const time = new Date(Date.UTC(2026, 10, 24, 9) + n * 1_000).toISOString();
  return sliSnapshotEvent(`svc-${n % 10}`, time, [], { minEvents: 10 });
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Deletes a durable consumer; NATS 2.9 may refuse once while it is being consumed. */
async function deleteConsumer(stream: string, durable: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await harness.bus.jsm.consumers.delete(
        qualifiedName(harness.bus.ns, stream),
        qualifiedName(harness.bus.ns, durable),
      );
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** A metric of every replica that ever ran, summed (or the largest, for a gauge), by stream. */
async function replicaMetric(
  name: string,
  combine: (a: number, b: number) => number = (a, b) => a + b,
): Promise<Record<string, number>> {
  const byStream: Record<string, number> = {};
  for (const replica of replicas) {
    const metric = await replica.registry.getSingleMetric(name)?.get();
    for (const { labels, value } of metric?.values ?? []) {
      const stream = String(labels.stream);
      byStream[stream] = stream in byStream ? combine(byStream[stream] ?? 0, value) : value;
    }
  }
  return byStream;
}

async function streamCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const stream of STREAMS) {
    const info = await harness.bus.jsm.streams.info(qualifiedName(harness.bus.ns, stream));
    counts[stream] = info.state.messages;
  }
  return counts;
}

async function storedCounts(): Promise<Record<string, number>> {
  const rows = await query<{ stream: string; n: number; max: string; min: string }>(
    pool,
    "SELECT stream, count(*)::int AS n, max(position) AS max, min(position) AS min FROM audit_log GROUP BY stream",
  );
  const counts: Record<string, number> = Object.fromEntries(STREAMS.map((s) => [s, 0]));
  for (const row of rows) {
    // Contiguous 1..n: as many rows as the highest position.
    expect(Number(row.min)).toBe(1);
    expect(Number(row.max)).toBe(row.n);
    counts[row.stream] = row.n;
  }
  return counts;
}

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 3 });
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.shutdown("test")));
  await pool.end();
  await harness.cleanup();
  await database.drop();
});

describe("audit service", () => {
  it("refuses to start without DATABASE_URL, naming it", async () => {
    await expect(startService(auditService(), { env: testServiceEnv(harness) })).rejects.toSatisfy(
      (error: unknown) => error instanceof ConfigError && error.message.includes("DATABASE_URL"),
    );
  });

  it("10,000 messages, three replicas, a restart, a lost database connection and a full redelivery: every message stored once, one chain per stream", async () => {
    const [first] = await Promise.all([start(), start(), start()]);
    const began = performance.now();
    const events: Envelope[] = [
      ...Array.from({ length: SNAPSHOTS }, (_, n) => snapshotEvent(n)),
      ...["checkout", "payments", "search"].flatMap((s, i) =>
        incidentStory(s, `INC-${i + 1}`, `PRP-${i + 1}`),
      ),
    ];
    let published = 0;
    const publishing = (async () => {
      for (let i = 0; i < events.length; i += 50) {
        const [head, ...rest] = events.slice(i, i + 50);
        if (head === undefined) break;
        const slice = [head, ...rest];
        await Promise.all(slice.map((e) => publishEvent(harness.bus, e)));
        // Duplicates from producers are dropped by the stream's dedup window.
        await publishEvent(harness.bus, head);
        published += slice.length;
      }
      for (let n = 0; n < 30; n++) {
        await harness.bus.js.publish(
          deadLetterSubject(harness.bus.ns, "METRICS", "checkout"),
          n % 3 === 0 ? `garbage ${n}` : JSON.stringify({ reason: "invalid", n }),
        );
      }
    })();
    // Mid-stream: one replica restarts, and every audit connection is cut once.
    await eventually(
      () => Promise.resolve(published >= SNAPSHOTS / 3),
      30_000,
      "publishing under way",
    );
    await first.shutdown("restart");
    await start();
    await query(
      pool,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'audit'",
      [database.name],
    );
    await publishing;
    const expected = await streamCounts();
    expect(expected.METRICS).toBe(SNAPSHOTS + 6);
    await eventually(
      async () => JSON.stringify(await storedCounts()) === JSON.stringify(expected),
      // Messages the stopped replica had been sent but not yet handed out come back after the
      // consumer's ack wait (30 s).
      80_000,
      "every message stored",
    );
    const total = Object.values(expected).reduce((sum, n) => sum + n, 0);
    process.stdout.write(
      `${total} messages stored by 3 replicas in ${Math.round(performance.now() - began)} ms\n`,
    );
    // Force a redelivery of a whole stream: the recreated consumer starts from the beginning.
    await deleteConsumer("INCIDENTS", "audit-incidents");
    await deleteConsumer("DEADLETTER", "audit-deadletter");
    await eventually(
      async () => {
        const info = await harness.bus.jsm.consumers
          .info(
            qualifiedName(harness.bus.ns, "INCIDENTS"),
            qualifiedName(harness.bus.ns, "audit-incidents"),
          )
          .catch(() => undefined);
        return (
          info?.num_pending === 0 &&
          info.num_ack_pending === 0 &&
          info.delivered.stream_seq >= (expected.INCIDENTS ?? 0)
        );
      },
      30_000,
      "the redelivery consumed",
    );
    expect(await storedCounts()).toEqual(expected);
    const duplicates = await query<{ n: number }>(
      pool,
      "SELECT count(*)::int AS n FROM (SELECT stream, message_id FROM audit_log WHERE message_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d",
    );
    expect(duplicates[0]?.n).toBe(0);
    // The metrics say the same: each row written by exactly one replica, once; the newest stored
    // sequence is the stream's last; the forced redelivery was all skipped.
    const rows = Object.fromEntries(Object.entries(expected).filter(([, n]) => n > 0));
    expect(await replicaMetric("safedeploy_audit_messages_stored_total")).toEqual(rows);
    expect(await replicaMetric("safedeploy_audit_stored_seq", Math.max)).toEqual(rows);
    const skipped = await replicaMetric("safedeploy_audit_messages_skipped_total");
    expect(skipped.INCIDENTS).toBeGreaterThanOrEqual(expected.INCIDENTS ?? 0);
    const verifying = performance.now();
    expect(await verifyChain(pool)).toMatchObject({ intact: true, firstBad: null });
    process.stdout.write(`verified in ${Math.round(performance.now() - verifying)} ms\n`);
    expect(await getIncident(pool, "INC-2")).toMatchObject({
      service: "payments",
      state: "resolved",
    });
  }, 120_000);

  it("anchors each stream's tail to what the audit durables acknowledged, so a cut-off tail is named", async () => {
    await start();
    const subject = `${harness.bus.ns.root}.governance.verdict.tail-probe`;
    const ack = await harness.bus.js.publish(subject, JSON.stringify({ probe: "newest row" }));
    let anchors: Awaited<ReturnType<typeof auditAnchors>> = [];
    await eventually(
      async () => {
        anchors = await auditAnchors(harness.bus);
        return anchors.find((a) => a.stream === "GOVERNANCE")?.storedThrough === ack.seq;
      },
      30_000,
      "the audit durable to acknowledge the probe",
    );
    expect(anchors.map((a) => a.stream).sort()).toEqual([...STREAMS].sort());
    const intact = await verifyChain(pool, { anchors });
    expect(intact).toMatchObject({ intact: true, anchored: [...STREAMS].sort() });

    // An attacker with DBA rights removes the newest row: the chain alone stays valid.
    await query(pool, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
    try {
      await query(pool, "DELETE FROM audit_log WHERE stream = 'GOVERNANCE' AND seq = $1", [
        ack.seq,
      ]);
    } finally {
      await query(pool, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
    }
    expect((await verifyChain(pool)).intact).toBe(true);
    const cut = await verifyChain(pool, { anchors });
    expect(cut.intact).toBe(false);
    expect(cut.firstBad).toMatchObject({
      stream: "GOVERNANCE",
      seq: ack.seq,
      problem: "truncated",
    });
    expect(cut.firstBad?.detail).toContain(`acknowledged seq ${ack.seq} as stored`);
  }, 60_000);
});
