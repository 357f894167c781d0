import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestDatabase } from "@safedeploy/testing";

const INIT_ROLES = fileURLToPath(
  new URL("../../../deploy/postgres/init-roles.sh", import.meta.url),
);

/** The test database's URL as another role (the test server trusts local connections). */
export function asRole(database: TestDatabase, role: string): string {
  const url = new URL(database.url);
  url.username = role;
  url.password = "";
  return url.toString();
}

/**
 * Runs deploy/postgres/init-roles.sh as the postgres image would (POSTGRES_USER, POSTGRES_DB and
 * the three password variables), against the test database. Roles are cluster-wide: another test
 * file running it at the same moment may collide on them, so one failure is retried.
 */
export async function initRoles(database: TestDatabase): Promise<void> {
  const url = new URL(database.url);
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    PGHOST: url.hostname,
    PGPORT: url.port === "" ? "5432" : url.port,
    ...(url.password === "" ? {} : { PGPASSWORD: decodeURIComponent(url.password) }),
    POSTGRES_USER: decodeURIComponent(url.username),
    POSTGRES_DB: database.name,
    SAFEDEPLOY_PG_MIGRATOR_PASSWORD: randomBytes(12).toString("hex"),
    SAFEDEPLOY_PG_AUDIT_PASSWORD: randomBytes(12).toString("hex"),
    SAFEDEPLOY_PG_GATEWAY_PASSWORD: randomBytes(12).toString("hex"),
  };
  const run = () => promisify(execFile)("sh", [INIT_ROLES], { env });
  await run().catch(async () => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    await run();
  });
}
