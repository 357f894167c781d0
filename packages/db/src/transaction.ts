import { setTimeout as sleep } from "node:timers/promises";
import type { Pool, PoolClient } from "pg";
import { errorCode } from "./errors.js";
import { checkout } from "./pool.js";
import type { DbLogger } from "./pool.js";

/** PostgreSQL transaction isolation levels. */
export type IsolationLevel = "read committed" | "repeatable read" | "serializable";

const BEGIN: Readonly<Record<IsolationLevel, string>> = {
  "read committed": "BEGIN ISOLATION LEVEL READ COMMITTED",
  "repeatable read": "BEGIN ISOLATION LEVEL REPEATABLE READ",
  serializable: "BEGIN ISOLATION LEVEL SERIALIZABLE",
};

/** Serialization failure and deadlock: the transaction lost a race and did nothing. */
const LOST_RACE = new Set(["40001", "40P01"]);

/** How {@link withTransaction} runs. */
export interface TransactionOptions {
  /** Default `read committed`. */
  readonly isolation?: IsolationLevel;
  /**
   * Tries in all, default 1 (no retry). Above 1, a transaction that fails with a serialization
   * failure (40001) or deadlock (40P01) is rolled back and `work` runs again on a fresh
   * transaction after a short jittered pause, so `work` must have no effect outside it. Other
   * errors, including a connection lost during COMMIT (the outcome is unknown), are never retried.
   */
  readonly attempts?: number;
  readonly logger?: DbLogger;
}

/**
 * Runs `work` on one client inside BEGIN … COMMIT and returns its result. When `work` (or COMMIT)
 * throws, the transaction is rolled back and the error rethrown unchanged. The client always goes
 * back to the pool, or is closed if its connection broke.
 */
export async function withTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const isolation = options.isolation ?? "read committed";
  const begin = Object.hasOwn(BEGIN, isolation) ? BEGIN[isolation] : undefined;
  if (begin === undefined) throw new TypeError(`unknown isolation level: ${isolation}`);
  const attempts = Math.max(1, Math.floor(options.attempts ?? 1));
  for (let attempt = 1; ; attempt += 1) {
    const { client, release } = await checkout(pool);
    let broken = false;
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true; // the connection is gone, and with it the transaction
      }
      const code = errorCode(error);
      if (attempt >= attempts || code === undefined || !LOST_RACE.has(code)) throw error;
      options.logger?.warn({ code, attempt, attempts }, "transaction lost a race; retrying");
    } finally {
      release(broken);
    }
    await sleep(Math.random() * 20 * 2 ** (attempt - 1));
  }
}
