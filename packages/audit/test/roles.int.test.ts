import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, query } from "@safedeploy/db";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import { appendBatch, getIncident, migrateAudit, verifyChain } from "../src/index.js";
import type { AuditPool } from "../src/index.js";
import { byStream, incidentStory } from "./fixtures.js";
import { asRole, initRoles } from "./roles.js";

let database: TestDatabase;
let admin: AuditPool;
let migrator: AuditPool;
let writer: AuditPool;
let gateway: AuditPool;

const as = (role: string): string => asRole(database, role);

beforeAll(async () => {
  database = await createTestDatabase();
  admin = createPool({ connectionString: database.url, max: 2 });
  await initRoles(database);
  // A second run (a restarted init, or by hand) only resets the passwords.
  await initRoles(database);
  migrator = createPool({ connectionString: as("safedeploy_migrator"), max: 2 });
  writer = createPool({ connectionString: as("safedeploy_audit"), max: 2 });
  gateway = createPool({ connectionString: as("safedeploy_gateway"), max: 2 });
});

afterAll(async () => {
  await Promise.all([admin, migrator, writer, gateway].map((pool) => pool.end()));
  await database.drop();
});

describe("separate PostgreSQL roles", () => {
  it("the writer waits for the migrator rather than migrating, then appends and projects", async () => {
    const waiting = migrateAudit(writer, { waitMs: 30_000 });
    const applied = await migrateAudit(migrator);
    expect(applied.applied).toContain("0005_hash_every_column");
    expect(await waiting).toMatchObject({ applied: [] });
    const [owner] = await query<{ tableowner: string }>(
      admin,
      "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'",
    );
    expect(owner?.tableowner).toBe("safedeploy_migrator");
    for (const [stream, messages] of byStream(incidentStory("checkout", "INC-1", "PRP-1"))) {
      await appendBatch(writer, stream, messages);
    }
    expect((await getIncident(gateway, "INC-1"))?.state).toBeDefined();
    expect(await verifyChain(gateway)).toMatchObject({ intact: true, firstBad: null });
  });

  it("a role that may not migrate and finds migrations missing fails naming the migrator", async () => {
    const empty = await createTestDatabase();
    try {
      const url = new URL(empty.url);
      url.username = "safedeploy_gateway";
      const pool = createPool({ connectionString: url.toString(), max: 1 });
      // A fresh database's public schema lets nobody but its owner create (PostgreSQL 15+).
      try {
        await expect(migrateAudit(pool, { waitMs: 300 })).rejects.toThrow(
          /lacks 0001_audit_log[^]*SAFEDEPLOY_AUDIT_MIGRATOR_URL/,
        );
      } finally {
        await pool.end();
      }
    } finally {
      await empty.drop();
    }
  });

  it("the audit writer cannot change, remove or unprotect the log", async () => {
    const refused = [
      ["UPDATE audit_log SET type = 'x'", /permission denied for table audit_log/],
      ["DELETE FROM audit_log", /permission denied for table audit_log/],
      ["TRUNCATE audit_log", /permission denied for table audit_log/],
      ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only", /must be owner/],
      ["ALTER TABLE audit_log DISABLE TRIGGER ALL", /must be owner/],
      ["DROP TRIGGER audit_log_append_only ON audit_log", /must be owner/],
      ["DROP FUNCTION audit_log_refuse_change() CASCADE", /must be owner/],
      ["DROP TABLE audit_log", /must be owner/],
      ["ALTER TABLE audit_log RENAME TO audit_log_old", /must be owner/],
      ["CREATE TABLE audit_log_fake (x int)", /permission denied for schema public/],
      ["SELECT safedeploy_audit_grants()", /permission denied for function/],
      ["SET session_replication_role = replica", /permission denied/],
    ] as const;
    for (const [sql, error] of refused) {
      await expect(query(writer, sql), sql).rejects.toThrow(error);
    }
    const [count] = await query<{ n: number }>(writer, "SELECT count(*)::int AS n FROM audit_log");
    expect(count?.n).toBeGreaterThan(0);
    expect(await verifyChain(writer)).toMatchObject({ intact: true });
  });

  it("the gateway role reads but cannot write the log or the read model", async () => {
    const refused = [
      `INSERT INTO audit_log (stream, seq, position, subject, headers, payload, stored_at,
         prev_hash, hash, hash_version) VALUES ('X', 1, 1, 's', '{}', '{}', now(), '', '', 2)`,
      "UPDATE incidents SET state = 'resolved'",
      "DELETE FROM proposals",
      "INSERT INTO services (name) VALUES ('evil')",
      "TRUNCATE services",
    ];
    for (const sql of refused) {
      await expect(query(gateway, sql), sql).rejects.toThrow(/permission denied/);
    }
    const [incidents] = await query<{ n: number }>(
      gateway,
      "SELECT count(*)::int AS n FROM incidents",
    );
    expect(incidents?.n).toBe(1);
  });

  it("grants reach tables a later migration creates, as soon as the migrator runs again", async () => {
    await query(migrator, "CREATE TABLE later_model (id text PRIMARY KEY)");
    await expect(query(writer, "INSERT INTO later_model VALUES ('a')")).rejects.toThrow(
      /permission denied/,
    );
    await migrateAudit(migrator);
    await query(writer, "INSERT INTO later_model VALUES ('a')");
    expect(await query(gateway, "SELECT id FROM later_model")).toEqual([{ id: "a" }]);
    await expect(query(gateway, "INSERT INTO later_model VALUES ('b')")).rejects.toThrow(
      /permission denied/,
    );
  });
});
