import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Pool } from "pg";
import type { DbLogger } from "./pool.js";

/** One forward-only migration: `NNNN_name.sql`. */
export interface Migration {
  readonly id: string;
  readonly name: string;
  readonly sql: string;
}

export interface MigrationReport {
  readonly applied: string[];
  readonly alreadyApplied: string[];
}

/** A migration history that no longer matches the files: refuse rather than guess. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

const FILE = /^(\d{4})_([a-z0-9_-]+)\.sql$/;

/** Reads `NNNN_name.sql` files from `dir`, in order; other files are ignored. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => FILE.test(file)).sort();
  return Promise.all(
    files.map(async (file) => {
      const [, id = "", name = ""] = FILE.exec(file) ?? [];
      return { id, name, sql: await readFile(join(dir, file), "utf8") };
    }),
  );
}

const checksum = (migration: Migration) => createHash("sha256").update(migration.sql).digest("hex");

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock: any
 * number of replicas may start at once and each migration still runs exactly once. Refuses to run
 * when an applied migration was edited or removed (forward-only).
 */
export async function migrate(
  pool: Pool,
  migrations: readonly Migration[],
  options: { table?: string; lockKey?: number; log?: DbLogger } = {},
): Promise<MigrationReport> {
  const table = options.table ?? "schema_migrations";
  if (!IDENTIFIER.test(table)) throw new MigrationError(`not a table name: ${table}`);
  const lockKey = options.lockKey ?? 7_311_000;
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [lockKey]);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${table} (
           id text PRIMARY KEY,
           name text NOT NULL,
           checksum text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<{ id: string; name: string; checksum: string }>(
        `SELECT id, name, checksum FROM ${table} ORDER BY id`,
      );
      const known = new Map(migrations.map((migration) => [migration.id, migration]));
      for (const row of rows) {
        const migration = known.get(row.id);
        if (migration === undefined) {
          throw new MigrationError(
            `migration ${row.id}_${row.name} was applied but is missing from the code (migrations are forward-only)`,
          );
        }
        if (checksum(migration) !== row.checksum) {
          throw new MigrationError(
            `migration ${row.id}_${row.name} was changed after it was applied; add a new migration instead`,
          );
        }
      }
      const done = new Set(rows.map((row) => row.id));
      const report: MigrationReport = { applied: [], alreadyApplied: [] };
      for (const migration of migrations) {
        const label = `${migration.id}_${migration.name}`;
        if (done.has(migration.id)) {
          report.alreadyApplied.push(label);
          continue;
        }
        try {
          await client.query("BEGIN");
          await client.query(migration.sql);
          await client.query(`INSERT INTO ${table} (id, name, checksum) VALUES ($1, $2, $3)`, [
            migration.id,
            migration.name,
            checksum(migration),
          ]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new MigrationError(`migration ${label} failed: ${(error as Error).message}`, {
            cause: error,
          });
        }
        options.log?.info({ migration: label }, "migration applied");
        report.applied.push(label);
      }
      return report;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [lockKey]);
    }
  } finally {
    client.release();
  }
}
