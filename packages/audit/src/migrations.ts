import { fileURLToPath } from "node:url";
import {
  MigrationError,
  errorCode,
  loadMigrations,
  migrate,
  migrationChecksum,
  query,
  withTransaction,
} from "@safedeploy/db";
import type { DbLogger, Migration, MigrationReport } from "@safedeploy/db";
import type { AuditPool } from "./append.js";

/** The folder of the audit log and read-model migrations (`packages/audit/migrations`). */
export const AUDIT_MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

/** How long a role that may not migrate waits for the migrator by default. */
const DEFAULT_WAIT_MS = 60_000;
const POLL_MS = 250;

const label = (migration: Migration) => `${migration.id}_${migration.name}`;

/** Whether the connected role may create tables in its schema: the migrator (or the single role). */
async function mayMigrate(pool: AuditPool): Promise<boolean> {
  const [row] = await query<{ may: boolean }>(
    pool,
    "SELECT has_schema_privilege(coalesce(current_schema(), 'public'), 'CREATE') AS may",
  );
  return row?.may === true;
}

/**
 * Applies the role grants when the connected role owns the log (see 0005_hash_every_column).
 * Replicas starting at once would collide on the catalog rows a GRANT rewrites ("tuple
 * concurrently updated"): a transaction-scoped advisory lock makes them take turns.
 */
async function applyGrants(pool: AuditPool): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
      "safedeploy.audit_grants",
    ]);
    await query(
      client,
      `SELECT safedeploy_audit_grants() FROM pg_tables
     WHERE tablename = 'audit_log' AND schemaname = coalesce(current_schema(), 'public')
       AND pg_has_role(current_user, tableowner, 'USAGE')`,
    );
  });
}

/** The audit migrations that are not applied (or applied with other SQL), by label. */
async function pendingOf(pool: AuditPool, migrations: readonly Migration[]): Promise<string[]> {
  let applied: { id: string; checksum: string }[];
  try {
    applied = await query(pool, "SELECT id, checksum FROM schema_migrations");
  } catch (error) {
    // Not created yet, or not granted yet: the migrator has not finished (it grants last).
    const code = errorCode(error);
    if (code === "42P01" || code === "42501") return migrations.map(label);
    throw error;
  }
  const checksums = new Map(applied.map((row) => [row.id, row.checksum]));
  return migrations.flatMap((migration) => {
    const checksum = checksums.get(migration.id);
    if (checksum !== undefined && checksum !== migrationChecksum(migration)) {
      throw new MigrationError(
        `migration ${label(migration)} was applied with other SQL than this build's (checksum differs)`,
        { migration: label(migration) },
      );
    }
    return checksum === undefined ? [label(migration)] : [];
  });
}

/** Waits until another role (the migrator) has applied every audit migration. */
async function awaitMigrator(
  pool: AuditPool,
  migrations: readonly Migration[],
  waitMs: number,
  logger: DbLogger | undefined,
): Promise<MigrationReport> {
  const deadline = Date.now() + waitMs;
  let pending = await pendingOf(pool, migrations);
  if (pending.length > 0) {
    logger?.info({ pending }, "this role may not migrate; waiting for the migrator");
  }
  while (pending.length > 0) {
    if (Date.now() > deadline) {
      throw new MigrationError(
        `the audit schema lacks ${pending.join(", ")} (or this role may not read ` +
          "schema_migrations) and this database role may not create it: run the migrations as " +
          "the schema owner (SAFEDEPLOY_AUDIT_MIGRATOR_URL)",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    pending = await pendingOf(pool, migrations);
  }
  return { applied: [], alreadyApplied: migrations.map(label) };
}

/**
 * Applies the audit migrations, then re-applies the grants of the separate roles (so tables of
 * later migrations get them too). Safe from every replica at once: `migrate` holds an advisory
 * lock, so the others wait and then find everything applied. A role that may not create tables
 * (the audit writer or the gateway when roles are separate) migrates nothing: it waits up to
 * `waitMs` (default 60 s) for the migrator to have applied them all, then fails naming what lacks.
 */
export async function migrateAudit(
  pool: AuditPool,
  options: { readonly logger?: DbLogger; readonly waitMs?: number } = {},
): Promise<MigrationReport> {
  const migrations = await loadMigrations(AUDIT_MIGRATIONS_DIR);
  if (!(await mayMigrate(pool))) {
    return awaitMigrator(pool, migrations, options.waitMs ?? DEFAULT_WAIT_MS, options.logger);
  }
  const report = await migrate(pool, migrations, {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  await applyGrants(pool);
  return report;
}
