import { parseArgs } from "node:util";
import { migrateAudit } from "@safedeploy/audit";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";
import { databaseUrlOf, withDatabase } from "./audit.js";

const USAGE = `Usage: safedeploy migrate [--json]

Applies the audit log and read-model migrations to the database at $DATABASE_URL and
re-applies the role grants. Connect as the schema owner (safedeploy_migrator of
deploy/postgres/init-roles.sh): the audit service, connected as safedeploy_audit, then
only waits for the schema and appends. Idempotent, and safe beside running replicas
(one migrator at a time holds a lock). Run by the Kubernetes migration Job.
Exit 0 migrated, 2 usage error (DATABASE_URL unset); a refused connection or a failed
migration is an error (exit 1 with the message).

Options:
  --json  print {applied, alreadyApplied} as JSON`;

/** `safedeploy migrate`: the audit database's migrations, as a one-shot step before the services. */
export const migrate: Command = {
  name: "migrate",
  summary: "apply the audit database migrations (as the schema owner in DATABASE_URL)",
  usage: USAGE,
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    if (positionals.length > 0) throw new UsageError("migrate takes no positional argument");
    const report = await withDatabase(databaseUrlOf(io), (pool) => migrateAudit(pool));
    if (values.json) {
      io.stdout(`${JSON.stringify(report)}\n`);
    } else {
      io.stdout(
        `migrations applied: ${report.applied.length === 0 ? "none" : report.applied.join(", ")}; ` +
          `already applied: ${report.alreadyApplied.length}\n`,
      );
    }
    return EXIT.ok;
  },
};
