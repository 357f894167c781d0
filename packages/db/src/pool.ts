import pg from "pg";
import type { Pool, PoolClient, QueryResultRow } from "pg";

/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<Pool, "query"> | Pick<PoolClient, "query">;

/** A logger slice; pass a pino child or omit. */
export interface DbLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface PoolOptions {
  readonly connectionString: string;
  readonly max?: number;
  readonly applicationName?: string;
  readonly log?: DbLogger;
}

/**
 * A pool whose idle-client errors (the server restarting, a network blip) are logged rather than
 * crashing the process; the next query reconnects.
 */
export function createPool(options: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "safedeploy",
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on("error", (error) => {
    options.log?.warn(
      { error: error.message },
      "idle PostgreSQL client failed; it will be replaced",
    );
  });
  return pool;
}

/** Readiness: resolves when the database answers within `timeoutMs`. */
export async function checkDatabase(pool: Pool, timeoutMs = 2_000): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query({ text: `SET statement_timeout = ${Math.floor(timeoutMs)}` });
    await client.query("SELECT 1");
  } finally {
    client.release();
  }
}

/** A typed query: rows as `Row` (validate them where the data came from outside). */
export async function query<Row extends QueryResultRow>(
  db: Queryable,
  text: string,
  params: readonly unknown[] = [],
): Promise<Row[]> {
  const result = await db.query<Row>(text, [...params]);
  return result.rows;
}
