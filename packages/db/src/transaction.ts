import type { Pool, PoolClient } from "pg";

export type IsolationLevel = "read committed" | "repeatable read" | "serializable";

const SERIALIZATION_FAILURES = new Set(["40001", "40P01"]);

function sqlState(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String(error.code)
    : undefined;
}

/**
 * Runs `work` in a transaction: COMMIT when it resolves, ROLLBACK when it throws. Serialization
 * failures and deadlocks are retried up to `attempts` times, so `work` must be safe to rerun.
 */
export async function withTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  options: { isolation?: IsolationLevel; attempts?: number } = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  for (let attempt = 1; ; attempt += 1) {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query(
        `BEGIN ISOLATION LEVEL ${(options.isolation ?? "read committed").toUpperCase()}`,
      );
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true; // the connection is gone; do not return it to the pool
      }
      if (attempt < attempts && SERIALIZATION_FAILURES.has(sqlState(error) ?? "")) continue;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
