import pg from "pg";
import type { Pool, PoolClient } from "pg";
import { DatabaseUnavailableError, errorCode } from "./errors.js";

/** The logger slice this package writes to; a pino logger (or child) fits. */
export interface DbLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What {@link createPool} needs. */
export interface PoolOptions {
  readonly connectionString: string;
  /** Most connections open at once, default 10. */
  readonly max?: number;
  /** Shown in `pg_stat_activity.application_name`, default `safedeploy`. */
  readonly applicationName?: string;
  /** How long to wait for a new connection before failing, default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Idle connections are closed after this long, default 30 s. */
  readonly idleTimeoutMs?: number;
  readonly logger?: DbLogger;
}

function describe(error: unknown): { error: string; code?: string } {
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCode(error);
  return code === undefined ? { error: message } : { error: message, code };
}

/**
 * A `pg` pool that survives the server restarting: a connection that fails while idle, or while
 * checked out by code that did not listen for it, is logged and replaced instead of crashing the
 * process with an unhandled `error` event; the next query opens a fresh connection.
 */
export function createPool(options: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "safedeploy",
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    keepAlive: true,
  });
  const log = options.logger;
  pool.on("error", (error) => {
    log?.warn(describe(error), "idle PostgreSQL connection failed; it will be replaced");
  });
  // pg-pool listens to a client's errors only while it is idle; a checked-out client whose
  // connection dies emits `error` too, and without a listener that would end the process.
  pool.on("connect", (client) => {
    client.on("error", (error) => {
      log?.warn(describe(error), "PostgreSQL connection failed while in use");
    });
  });
  return pool;
}

/** A checked-out client whose connection errors are recorded rather than thrown as events. */
export interface CheckedOutClient {
  readonly client: PoolClient;
  /** Returns the client to the pool, or closes it when `destroy` is set; safe to call twice. */
  readonly release: (destroy?: boolean) => void;
}

/** Checks a client out of any `pg` pool, guarded against `error` events while it is held. */
export async function checkout(pool: Pool): Promise<CheckedOutClient> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const guard = (error: Error) => {
    lost = error;
  };
  client.on("error", guard);
  let released = false;
  return {
    client,
    release: (destroy = false) => {
      if (released) return;
      released = true;
      client.removeListener("error", guard);
      // A client that lost its connection (or whose session state is unknown) is not reused.
      client.release(destroy || lost !== undefined);
    },
  };
}

/** How {@link checkDatabase} waits. */
export interface CheckOptions {
  /** Deadline for connecting and answering, default 2 s. */
  readonly timeoutMs?: number;
  /** Aborts the check early, e.g. the readiness endpoint's own deadline. */
  readonly signal?: AbortSignal;
}

/**
 * Readiness: resolves when the database answers `SELECT 1` within the deadline, else rejects
 * with a {@link DatabaseUnavailableError}. A connection that missed the deadline is closed rather
 * than returned to the pool, so a hung server cannot pin pool slots. Fits a runtime readiness
 * check as `(signal) => checkDatabase(pool, { signal })`.
 */
export async function checkDatabase(pool: Pool, options: CheckOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const deadline = AbortSignal.any(
    options.signal === undefined
      ? [AbortSignal.timeout(timeoutMs)]
      : [AbortSignal.timeout(timeoutMs), options.signal],
  );
  let held: CheckedOutClient | undefined;
  const probe = (async () => {
    const checkedOut = await checkout(pool);
    if (deadline.aborted) {
      checkedOut.release(true);
      return;
    }
    held = checkedOut;
    await checkedOut.client.query("SELECT 1");
  })();
  // The probe may settle after the deadline; its outcome no longer matters then.
  probe.catch(() => undefined);
  try {
    await untilAborted(probe, deadline);
    held?.release();
  } catch (error) {
    held?.release(true);
    if (deadline.aborted && error === deadline.reason) {
      throw new DatabaseUnavailableError(
        options.signal?.aborted === true
          ? "database check aborted"
          : `database did not answer within ${timeoutMs} ms`,
        { retryable: true },
      );
    }
    throw new DatabaseUnavailableError(
      `database is not available: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/** `work`, or a rejection with the signal's reason as soon as it aborts. */
async function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        onAbort = () => {
          reject(signal.reason as Error);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}
