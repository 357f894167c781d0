import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, loadMigrations, migrate, query } from "@safedeploy/db";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import {
  AUDIT_MIGRATIONS_DIR,
  GENESIS_HASH,
  appendBatch,
  chainHash,
  derivedColumns,
  migrateAudit,
  verifyChain,
} from "../src/index.js";
import type { AuditMessage, AuditPool } from "../src/index.js";

let database: TestDatabase;
let pool: AuditPool;

function messages(count: number, firstSeq: number): AuditMessage[] {
  return Array.from({ length: count }, (_, i) => {
    const seq = firstSeq + i;
    return {
      seq,
      subject: `sd.incidents.incident.opened.svc-${seq % 3}`,
      headers: {},
      data: JSON.stringify({ id: `m-${seq}`, type: "incident.opened", service: `svc-${seq % 3}` }),
      time: new Date(Date.UTC(2026, 10, 24) + seq * 1_000).toISOString(),
    };
  });
}

/** Rows as the writer before 0005 stored them: hash version 1, which leaves out type and service. */
async function appendVersionOne(stream: string, batch: readonly AuditMessage[]): Promise<void> {
  let prevHash = GENESIS_HASH;
  for (const [index, m] of batch.entries()) {
    const payload = JSON.parse(String(m.data)) as Record<string, string>;
    const storedAt = new Date(m.time).toISOString();
    const { type, service } = derivedColumns(payload, m.subject);
    const fields = { stream, seq: m.seq, position: index + 1, subject: m.subject };
    const hash = chainHash(prevHash, {
      ...fields,
      messageId: payload.id ?? null,
      type,
      service,
      headers: m.headers,
      payload,
      storedAt,
      hashVersion: 1,
    });
    await query(
      pool,
      `INSERT INTO audit_log (stream, seq, position, subject, message_id, type, service, headers,
         payload, stored_at, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        stream,
        m.seq,
        index + 1,
        m.subject,
        payload.id,
        type,
        service,
        JSON.stringify(m.headers),
        JSON.stringify(payload),
        storedAt,
        prevHash,
        hash,
      ],
    );
    prevHash = hash;
  }
}

/** As a superuser with the append-only trigger off, as an attacker with DBA rights. */
async function tamper(sql: string): Promise<void> {
  await query(pool, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
  try {
    await query(pool, sql);
  } finally {
    await query(pool, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 2 });
  // The schema as it was before hash versions, with rows its writer stored.
  await migrate(pool, (await loadMigrations(AUDIT_MIGRATIONS_DIR)).slice(0, 4));
  for (const stream of ["OLD", "OLDTYPE", "MIXED", "NEWTYPE", "NEWSERVICE", "DOWNGRADE"]) {
    await appendVersionOne(stream, messages(3, 1));
  }
  expect((await migrateAudit(pool)).applied).toEqual([
    "0005_hash_every_column",
    "0006_history_indexes",
    "0007_service_wide_evaluations",
  ]);
  for (const stream of ["MIXED", "NEWTYPE", "NEWSERVICE", "DOWNGRADE"]) {
    await appendBatch(pool, stream, messages(3, 4));
  }
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

describe("hash versions", () => {
  it("version 1 is the hash the writer before 0005 computed", () => {
    const [m] = messages(1, 1);
    if (m === undefined) throw new Error("no message");
    const payload = JSON.parse(String(m.data)) as Record<string, string>;
    // Computed by the writer as it was before hash versions (its body: these eight fields).
    expect(
      chainHash(GENESIS_HASH, {
        stream: "OLD",
        seq: 1,
        position: 1,
        subject: m.subject,
        messageId: "m-1",
        type: "ignored by version 1",
        service: "ignored by version 1",
        headers: {},
        payload,
        storedAt: new Date(m.time).toISOString(),
        hashVersion: 1,
      }),
    ).toBe("58171005d13002a27724d4e5337651162e5381f8ec60e2d2a08a24411d933fb9");
  });

  it("rows stored before the migration still verify, and new rows continue their chain in version 2", async () => {
    expect(await verifyChain(pool, { stream: "OLD" })).toMatchObject({ intact: true, rows: 3 });
    expect(await verifyChain(pool, { stream: "MIXED" })).toMatchObject({ intact: true, rows: 6 });
    const versions = await query<{ hash_version: number }>(
      pool,
      "SELECT hash_version FROM audit_log WHERE stream = 'MIXED' ORDER BY position",
    );
    expect(versions.map((row) => row.hash_version)).toEqual([1, 1, 1, 2, 2, 2]);
  });

  it("a changed type of a version 2 row breaks the chain", async () => {
    await tamper(
      "UPDATE audit_log SET type = 'incident.resolved' WHERE stream = 'NEWTYPE' AND seq = 5",
    );
    expect((await verifyChain(pool, { stream: "NEWTYPE" })).firstBad).toMatchObject({
      seq: 5,
      position: 5,
      problem: "edited",
      detail: "its content no longer matches its hash",
    });
  });

  it("a changed service of a version 2 row breaks the chain", async () => {
    await tamper("UPDATE audit_log SET service = 'other' WHERE stream = 'NEWSERVICE' AND seq = 6");
    expect((await verifyChain(pool, { stream: "NEWSERVICE" })).firstBad).toMatchObject({
      seq: 6,
      problem: "edited",
    });
  });

  it("a changed type of a version 1 row no longer matches its payload", async () => {
    await tamper(
      "UPDATE audit_log SET type = 'incident.resolved' WHERE stream = 'OLDTYPE' AND seq = 2",
    );
    expect((await verifyChain(pool, { stream: "OLDTYPE" })).firstBad).toMatchObject({
      seq: 2,
      problem: "edited",
      detail: "its type no longer matches its payload",
    });
  });

  it("a version 2 row marked version 1 (a hash that covers less) is named", async () => {
    await tamper("UPDATE audit_log SET hash_version = 1 WHERE stream = 'DOWNGRADE' AND seq = 6");
    expect((await verifyChain(pool, { stream: "DOWNGRADE" })).firstBad).toMatchObject({
      seq: 6,
      problem: "edited",
      detail: "its hash version 1 is older than the previous row's (2)",
    });
  });
});
