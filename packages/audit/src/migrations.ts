import { fileURLToPath } from "node:url";
import { loadMigrations, migrate } from "@safedeploy/db";
import type { DbLogger, MigrationReport } from "@safedeploy/db";
import type { AuditPool } from "./append.js";

/** The folder of the audit log and read-model migrations (`packages/audit/migrations`). */
export const AUDIT_MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

/**
 * Applies the audit migrations. Safe from every replica at once: `migrate` holds an advisory lock,
 * so the others wait and then find everything applied.
 */
export async function migrateAudit(
  pool: AuditPool,
  options: { readonly logger?: DbLogger } = {},
): Promise<MigrationReport> {
  return migrate(pool, await loadMigrations(AUDIT_MIGRATIONS_DIR), {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
}
