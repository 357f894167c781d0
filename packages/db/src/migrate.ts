import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Pool, PoolClient } from "pg";
import { MigrationError } from "./errors.js";
import { checkout } from "./pool.js";
import type { DbLogger } from "./pool.js";

/**
 * One forward-only migration, from a file `NNNN_name.sql`. Its SQL runs in one transaction with
 * the bookkeeping row, so it must not contain `BEGIN`/`COMMIT` nor statements that refuse to run
 * in a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`).
 */
export interface Migration {
  /** The four digits, e.g. `0001`; migrations run in this order. */
  readonly id: string;
  /** The rest of the file name, e.g. `audit_log`. */
  readonly name: string;
  readonly sql: string;
}

/** What {@link migrate} did, each migration as `NNNN_name`. */
export interface MigrationReport {
  /** Applied by this call, in order. */
  readonly applied: string[];
  /** Found applied already (by an earlier run or a replica that held the lock first). */
  readonly alreadyApplied: string[];
}

/** How {@link migrate} records and serialises its work. */
export interface MigrateOptions {
  /** Bookkeeping table, optionally schema-qualified; default `schema_migrations`. */
  readonly table?: string;
  /**
   * Key of the session-level advisory lock every migrating process takes; default derived from
   * the table name, so two histories in one database do not wait for each other.
   */
  readonly lockKey?: bigint | number;
  readonly logger?: DbLogger;
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9][a-z0-9_-]*)\.sql$/;
const MIGRATION_ID = /^\d{4}$/;
const MIGRATION_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

const label = (migration: Pick<Migration, "id" | "name">) => `${migration.id}_${migration.name}`;

/**
 * Reads the migrations in `dir`: every `NNNN_name.sql` file (name in lower case, digits, `_`,
 * `-`), sorted by number. Other files are ignored, but a `.sql` file that does not follow the
 * pattern, or two files with one number, is an error rather than a silently skipped migration.
 */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) {
      throw new MigrationError(
        `${join(dir, file)} is not named NNNN_name.sql (four digits, then lower-case letters, digits, _ or -)`,
      );
    }
    const [, id = "", name = ""] = match;
    migrations.push({ id, name, sql: await readFile(join(dir, file), "utf8") });
  }
  checkList(migrations);
  return migrations;
}

/** Ids well-formed, unique and ascending: the order the list is in is the order they run in. */
function checkList(migrations: readonly Migration[]): void {
  let previous: Migration | undefined;
  for (const migration of migrations) {
    if (!MIGRATION_ID.test(migration.id) || !MIGRATION_NAME.test(migration.name)) {
      throw new MigrationError(
        `migration ${JSON.stringify(label(migration))} is not named NNNN_name (four digits, then lower-case letters, digits, _ or -)`,
      );
    }
    if (previous !== undefined && migration.id <= previous.id) {
      throw new MigrationError(
        migration.id === previous.id
          ? `migrations ${label(previous)} and ${label(migration)} share the number ${migration.id}`
          : `migration ${label(migration)} is listed after ${label(previous)}; list migrations in order`,
      );
    }
    previous = migration;
  }
}

/** sha256 of the SQL, with CRLF read as LF so a checkout's line endings do not change it. */
export function migrationChecksum(migration: Pick<Migration, "sql">): string {
  return createHash("sha256").update(migration.sql.replace(/\r\n/g, "\n")).digest("hex");
}

function defaultLockKey(table: string): bigint {
  return createHash("sha256").update(`safedeploy.migrate:${table}`).digest().readBigInt64BE(0);
}

function lockKeyOf(options: MigrateOptions, table: string): string {
  const key = options.lockKey ?? defaultLockKey(table);
  if (typeof key === "number" && !Number.isSafeInteger(key)) {
    throw new MigrationError(`lockKey must be a safe integer, got ${key}`);
  }
  const big = BigInt(key);
  if (big < INT8_MIN || big > INT8_MAX) {
    throw new MigrationError(`lockKey must fit in a PostgreSQL bigint, got ${big}`);
  }
  return big.toString();
}

interface AppliedRow {
  id: string;
  name: string;
  checksum: string;
}

/**
 * Brings the database up to date with `migrations`, forward only.
 *
 * On one dedicated connection it takes a session-level `pg_advisory_lock`, so any number of
 * processes may start at once and each migration is still applied exactly once: the others wait,
 * then find it applied. Under the lock it creates the bookkeeping table if missing (`id`, `name`,
 * `checksum` sha256, `applied_at`), then refuses to go on — with a {@link MigrationError} naming
 * the migration — when an applied migration was edited, renamed or removed from the list, or a new
 * one is numbered before one already applied. Each pending migration runs in its own transaction
 * together with its bookkeeping row: a failing one leaves nothing behind, and the ones before it
 * stay applied. The lock is released, and the connection closed, whatever happens.
 */
export async function migrate(
  pool: Pool,
  migrations: readonly Migration[],
  options: MigrateOptions = {},
): Promise<MigrationReport> {
  const table = options.table ?? "schema_migrations";
  const parts = table.split(".");
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new MigrationError(`not a plain table name: ${table}`);
  }
  const lockKey = lockKeyOf(options, table);
  checkList(migrations);
  const log = options.logger;

  const { client, release } = await checkout(pool);
  let locked = false;
  try {
    const { rows: acquired } = await client.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_lock($1::bigint) AS locked",
      [lockKey],
    );
    if (acquired[0]?.locked !== true) {
      log?.info({ table, lockKey }, "another process is migrating; waiting for its lock");
      await client.query("SELECT pg_advisory_lock($1::bigint)", [lockKey]);
    }
    locked = true;
    return await migrateLocked(client, migrations, table, log);
  } finally {
    if (locked) {
      await client
        .query("SELECT pg_advisory_unlock($1::bigint)", [lockKey])
        .catch((error: unknown) => {
          log?.warn(
            { table, error: error instanceof Error ? error.message : String(error) },
            "could not release the migration lock; closing its connection releases it",
          );
        });
    }
    // The SQL may have changed session settings (search_path, …): never hand this client on.
    release(true);
  }
}

async function migrateLocked(
  client: PoolClient,
  migrations: readonly Migration[],
  table: string,
  log: DbLogger | undefined,
): Promise<MigrationReport> {
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
       id text PRIMARY KEY,
       name text NOT NULL,
       checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  const { rows } = await client.query<AppliedRow>(
    `SELECT id, name, checksum FROM ${table} ORDER BY id`,
  );
  const listed = new Map(migrations.map((migration) => [migration.id, migration]));
  for (const row of rows) {
    const migration = listed.get(row.id);
    if (migration === undefined) {
      throw new MigrationError(
        `migration ${label(row)} was applied but is missing from the list; migrations are forward-only, so restore it`,
        { migration: label(row) },
      );
    }
    if (migration.name !== row.name) {
      throw new MigrationError(
        `migration ${label(row)} was applied under that name but is now called ${label(migration)}; restore its name`,
        { migration: label(row) },
      );
    }
    if (migrationChecksum(migration) !== row.checksum) {
      throw new MigrationError(
        `migration ${label(row)} was changed after it was applied (checksum differs); restore it and add a new migration instead`,
        { migration: label(row) },
      );
    }
  }
  const applied = new Set(rows.map((row) => row.id));
  const latest = rows.at(-1);
  const report: MigrationReport = { applied: [], alreadyApplied: [] };
  for (const migration of migrations) {
    if (applied.has(migration.id)) {
      report.alreadyApplied.push(label(migration));
      continue;
    }
    if (latest !== undefined && migration.id < latest.id) {
      throw new MigrationError(
        `migration ${label(migration)} is numbered before ${label(latest)}, which is already applied; renumber it after ${latest.id}`,
        { migration: label(migration) },
      );
    }
    await applyOne(client, migration, table);
    log?.info({ migration: label(migration) }, "migration applied");
    report.applied.push(label(migration));
  }
  return report;
}

async function applyOne(client: PoolClient, migration: Migration, table: string): Promise<void> {
  try {
    await client.query("BEGIN");
    await client.query(migration.sql);
    await client.query(`INSERT INTO ${table} (id, name, checksum) VALUES ($1, $2, $3)`, [
      migration.id,
      migration.name,
      migrationChecksum(migration),
    ]);
    await client.query("COMMIT");
  } catch (error) {
    // If the connection is gone the server has rolled back already; report the first failure.
    await client.query("ROLLBACK").catch(() => undefined);
    throw new MigrationError(
      `migration ${label(migration)} failed: ${error instanceof Error ? error.message : String(error)}`,
      { migration: label(migration), cause: error },
    );
  }
}
