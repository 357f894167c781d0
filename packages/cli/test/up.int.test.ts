import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateAudit } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { startPglite } from "../src/stack/postgres.js";
import type { EmbeddedPostgres } from "../src/stack/postgres.js";

const exec = promisify(execFile);
const WORKER = join(import.meta.dirname, "fixtures", "pg-worker.mjs");

/*
 * The proof the issue asks for: what `safedeploy up` relies on when DATABASE_URL is unset and no
 * PostgreSQL is installed, exercised through the PGlite socket from several OS processes.
 */
describe("embedded PGlite through the pglite-socket multiplexer", () => {
  let dir: string;
  let pg: EmbeddedPostgres;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sd-pglite-"));
    pg = await startPglite(join(dir, "pg"));
  });
  afterAll(async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the audit migrations (packages/db migrate + migrateAudit), then finds them applied", async () => {
    const pool = createPool({ connectionString: pg.url, max: 4 });
    try {
      const first = await migrateAudit(pool);
      expect(first.applied.length).toBeGreaterThan(0);
      const again = await migrateAudit(pool);
      expect(again.applied).toEqual([]);
      const { rows } = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM schema_migrations",
      );
      expect(Number(rows[0]?.n)).toBe(first.applied.length);
    } finally {
      await pool.end();
    }
  });

  it("transactions with pg_advisory_xact_lock from 4 processes: no lost update, no crossed answers, rollbacks roll back", async () => {
    const pool = createPool({ connectionString: pg.url, max: 2 });
    try {
      await pool.query("CREATE TABLE proof_counter (id int PRIMARY KEY, n int NOT NULL)");
      await pool.query("INSERT INTO proof_counter VALUES (1, 0)");
      await pool.query("CREATE TABLE proof_log (worker text NOT NULL, seq int NOT NULL)");
      const iterations = 25;
      const workers = ["a", "b", "c", "d"];
      const results = await Promise.all(
        workers.map(async (id) => {
          const { stdout } = await exec(
            process.execPath,
            [WORKER, pg.url, id, String(iterations)],
            {
              cwd: import.meta.dirname,
            },
          );
          return JSON.parse(stdout) as {
            increments: number;
            mismatches: number;
            rolledBack: boolean;
          };
        }),
      );
      for (const result of results) {
        expect(result).toMatchObject({ increments: iterations, mismatches: 0, rolledBack: true });
      }
      const { rows } = await pool.query<{ n: number }>("SELECT n FROM proof_counter WHERE id = 1");
      expect(rows[0]?.n).toBe(iterations * workers.length);
      const log = await pool.query<{ n: string }>("SELECT count(*) AS n FROM proof_log");
      expect(Number(log.rows[0]?.n)).toBe(iterations * workers.length);
      const negative = await pool.query("SELECT 1 FROM proof_log WHERE seq = -1");
      expect(negative.rowCount).toBe(0);
    } finally {
      await pool.end();
    }
  }, 120_000);

  it("data survives a restart of the embedded server", async () => {
    await pg.stop();
    pg = await startPglite(join(dir, "pg"));
    const pool = createPool({ connectionString: pg.url, max: 1 });
    try {
      const { rows } = await pool.query<{ n: number }>("SELECT n FROM proof_counter WHERE id = 1");
      expect(rows[0]?.n).toBe(100);
      expect((await migrateAudit(pool)).applied).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it("session-level advisory locks are NOT exclusive across connections (one shared backend session)", async () => {
    const a = createPool({ connectionString: pg.url, max: 1 });
    const b = createPool({ connectionString: pg.url, max: 1 });
    try {
      const first = await a.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(777) AS ok");
      const second = await b.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(777) AS ok");
      expect(first.rows[0]?.ok).toBe(true);
      // On a real PostgreSQL this is false. Through PGlite every connection is the same session, so
      // `migrate`'s session lock does not keep concurrent migrators apart: `safedeploy up` migrates
      // once itself before starting any service.
      expect(second.rows[0]?.ok).toBe(true);
      await a.query("SELECT pg_advisory_unlock_all()");
    } finally {
      await a.end();
      await b.end();
    }
  });
});
