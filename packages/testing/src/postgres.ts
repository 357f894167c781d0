import { randomBytes } from "node:crypto";
import pg from "pg";
import { dockerAvailable } from "./docker.js";

/** A database of its own for one test file, on the server {@link testDatabaseAdminUrl} found. */
export interface TestDatabase {
  /** Connection string of this database. */
  readonly url: string;
  /** `sd_test_<random>`. */
  readonly name: string;
  /** Terminates its connections and drops it; calling it again does nothing. */
  drop(): Promise<void>;
}

/** Where {@link resolveTestDatabaseAdminUrl} looks, in order. */
export interface TestDatabaseSources {
  /** Used, and required to answer, when set and not empty (normally `process.env.DATABASE_URL`). */
  readonly databaseUrl?: string | undefined;
  /** Tried next, first answering wins; default the machine's PostgreSQL as `postgres`, then `root`. */
  readonly localUrls?: readonly string[];
  /** Whether a Docker engine runs, for a postgres:17-alpine container; default a socket ping. */
  readonly dockerAvailable?: () => Promise<boolean>;
}

/** The machine's PostgreSQL, as the CI and preinstalled machines run it (trust auth on TCP). */
export const LOCAL_DATABASE_URLS: readonly string[] = [
  "postgres://postgres@127.0.0.1:5432/test",
  "postgres://root@127.0.0.1:5432/test",
];

const POSTGRES_IMAGE = "postgres:17-alpine";

/** The URL with its password masked, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(DATABASE_URL is not a URL)";
  }
}

function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reason(error.errors[0]);
  return error instanceof Error ? error.message || error.name : String(error);
}

/** Connects as `url` and runs `work` on a single client, always closing it. */
async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on("error", () => undefined); // a failure surfaces through the pending query instead
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Undefined when `url` answers `SELECT 1`, else why not. */
async function probe(url: string): Promise<string | undefined> {
  try {
    await withClient(url, (client) => client.query("SELECT 1"));
    return undefined;
  } catch (error) {
    return reason(error);
  }
}

async function startContainer(): Promise<string> {
  // Loaded only here, so test runs on a machine with PostgreSQL never load testcontainers.
  const { GenericContainer, Wait } = await import("testcontainers");
  const container = await new GenericContainer(POSTGRES_IMAGE)
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust", POSTGRES_DB: "test" })
    .withExposedPorts(5432)
    // The entrypoint starts the server once to initialise it, then again for real.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .withStartupTimeout(120_000)
    .start();
  return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/test`;
}

/**
 * Finds a PostgreSQL server on which tests may create databases: `databaseUrl` when set (it must
 * answer), else the first of `localUrls` that answers, else a postgres:17-alpine container when a
 * Docker engine is reachable (removed by testcontainers when the process exits). When none is,
 * the error lists what was tried, why each failed, and how to provide one.
 */
export async function resolveTestDatabaseAdminUrl(
  sources: TestDatabaseSources = {},
): Promise<string> {
  const configured = sources.databaseUrl;
  if (configured !== undefined && configured !== "") {
    const failure = await probe(configured);
    if (failure === undefined) return configured;
    throw new Error(
      `DATABASE_URL=${redact(configured)} does not answer: ${failure}. ` +
        "Fix it (the role needs CREATEDB), or unset it to use PostgreSQL on 127.0.0.1:5432 or Docker.",
    );
  }
  const tried = ["DATABASE_URL: not set"];
  for (const url of sources.localUrls ?? LOCAL_DATABASE_URLS) {
    const failure = await probe(url);
    if (failure === undefined) return url;
    tried.push(`${redact(url)}: ${failure}`);
  }
  if (await (sources.dockerAvailable ?? dockerAvailable)()) return startContainer();
  const host = process.env.DOCKER_HOST;
  tried.push(
    `Docker engine (${host === undefined || host === "" ? "/var/run/docker.sock" : host}): not reachable`,
  );
  throw new Error(
    `no PostgreSQL for tests. Tried:\n  - ${tried.join("\n  - ")}\n` +
      "Fix one of: set DATABASE_URL to a server where the role may CREATE DATABASE; " +
      "run PostgreSQL on 127.0.0.1:5432 with trust auth for role postgres and a database `test` " +
      `(bash .ci/run sets this up); or start a Docker engine so testcontainers can run ${POSTGRES_IMAGE}.`,
  );
}

let adminUrl: Promise<string> | undefined;

/**
 * The server this process's tests create their databases on, resolved once (see
 * {@link resolveTestDatabaseAdminUrl}): `DATABASE_URL`, else 127.0.0.1:5432 as `postgres` or
 * `root`, else a container.
 */
export async function testDatabaseAdminUrl(): Promise<string> {
  adminUrl ??= resolveTestDatabaseAdminUrl({ databaseUrl: process.env.DATABASE_URL });
  return adminUrl;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Creates a fresh, uniquely named database (`sd_test_<random>`) on the test server, so test files
 * running in parallel never see each other's tables, locks or migrations.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = await testDatabaseAdminUrl();
  const name = `sd_test_${randomBytes(6).toString("hex")}`;
  try {
    await withClient(admin, (client) => client.query(`CREATE DATABASE ${name}`));
  } catch (error) {
    throw new Error(
      `could not create test database ${name} on ${redact(admin)}: ${reason(error)}`,
      {
        cause: error,
      },
    );
  }
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: withDatabase(admin, name),
    drop: async () => {
      dropped ??= withClient(admin, async (client) => {
        const { rows } = await client.query<{ server_version_num: string }>(
          "SHOW server_version_num",
        );
        if (Number(rows[0]?.server_version_num ?? 0) >= 130_000) {
          // FORCE terminates the connections and drops in one step: no pool can sneak back in.
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          return;
        }
        await client.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          [name],
        );
        await client.query(`DROP DATABASE IF EXISTS ${name}`);
      }).catch((error: unknown) => {
        dropped = undefined; // let a later call try again
        throw error;
      });
      await dropped;
    },
  };
}
