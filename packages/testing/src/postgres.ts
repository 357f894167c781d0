import { randomBytes } from "node:crypto";
import pg from "pg";
import { dockerAvailable } from "./docker.js";

/** A database of its own for one test file. */
export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  /** Terminates its connections and drops it. */
  drop(): Promise<void>;
}

const LOCAL_CANDIDATES = [
  "postgres://postgres@127.0.0.1:5432/test",
  "postgres://root@127.0.0.1:5432/test",
  "postgres://postgres@127.0.0.1:5432/postgres",
];

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let adminUrl: Promise<string> | undefined;

/**
 * The server tests create their databases on: `DATABASE_URL` when set, else the machine's
 * PostgreSQL on 127.0.0.1:5432, else a container when a Docker engine is reachable.
 */
export async function testDatabaseAdminUrl(): Promise<string> {
  adminUrl ??= (async () => {
    const configured = process.env.DATABASE_URL;
    if (configured !== undefined && configured !== "") return configured;
    for (const candidate of LOCAL_CANDIDATES) if (await answers(candidate)) return candidate;
    if (await dockerAvailable()) {
      const { GenericContainer, Wait } = await import("testcontainers");
      const container = await new GenericContainer("postgres:17-alpine")
        .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust", POSTGRES_DB: "test" })
        .withExposedPorts(5432)
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
        .start();
      return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/test`;
    }
    throw new Error(
      `no PostgreSQL for tests: set DATABASE_URL, run PostgreSQL on 127.0.0.1:5432 with trust auth (bash .ci/run does; tried ${LOCAL_CANDIDATES.join(", ")}), or run a Docker engine`,
    );
  })();
  return adminUrl;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates a fresh, uniquely named database, so test files in parallel never share tables. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = await testDatabaseAdminUrl();
  const name = `sd_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return {
    name,
    url: withDatabase(admin, name),
    drop: async () => {
      const dropper = new pg.Client({ connectionString: admin });
      await dropper.connect();
      try {
        await dropper.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          [name],
        );
        await dropper.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await dropper.end();
      }
    },
  };
}
