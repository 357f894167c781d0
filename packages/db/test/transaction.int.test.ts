import type { Pool, PoolClient } from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool, isRetryableDbError, query, withTransaction } from "@safedeploy/db";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";

let database: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  // One connection: a client that was not given back would make the next test hang.
  pool = createPool({ connectionString: database.url, max: 1, connectTimeoutMs: 2_000 });
  await query(pool, "CREATE TABLE ledger (id text PRIMARY KEY, amount int NOT NULL)");
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

beforeEach(async () => {
  await query(pool, "TRUNCATE ledger");
});

const ids = async () =>
  (await query<{ id: string }>(pool, "SELECT id FROM ledger ORDER BY id")).map((row) => row.id);

/** Resolves once `count` callers have arrived, so transactions interleave as the test needs. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived === count) open();
    await opened;
  };
}

describe("withTransaction", () => {
  it("commits what the work did and returns its result", async () => {
    const result = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO ledger VALUES ('a', 1), ('b', 2)");
      return "done";
    });
    expect(result).toBe("done");
    expect(await ids()).toEqual(["a", "b"]);
  });

  it("rolls everything back and rethrows the same error", async () => {
    const failure = new Error("changed my mind");
    await expect(
      withTransaction(pool, async (client) => {
        await client.query("INSERT INTO ledger VALUES ('a', 1)");
        throw failure;
      }),
    ).rejects.toBe(failure);
    const sqlFailure = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO ledger VALUES ('b', 1)");
      await client.query("INSERT INTO ledger VALUES ('b', 2)");
    }).catch((error: unknown) => error);
    expect(sqlFailure).toMatchObject({ code: "23505" });
    expect(await ids()).toEqual([]);
    expect({ total: pool.totalCount, waiting: pool.waitingCount }).toEqual({
      total: 1,
      waiting: 0,
    });
  });

  it("runs at the requested isolation level", async () => {
    const level = await withTransaction(
      pool,
      async (client) =>
        (
          await query<{ level: string }>(
            client,
            "SELECT current_setting('transaction_isolation') AS level",
          )
        )[0]?.level,
      { isolation: "repeatable read" },
    );
    expect(level).toBe("repeatable read");
    await expect(
      withTransaction(pool, () => Promise.resolve(), {
        isolation: "chaos" as "serializable",
      }),
    ).rejects.toThrow(/unknown isolation level: chaos/);
  });

  it("closes a client whose connection broke instead of reusing it", async () => {
    const failure = await withTransaction(pool, async (client) => {
      await client.query("SELECT pg_terminate_backend(pg_backend_pid())");
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "57P01" });
    expect(isRetryableDbError(failure)).toBe(true);
    // The pool's only slot is free again and the next transaction gets a working connection.
    await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO ledger VALUES ('after', 1)");
    });
    expect(await ids()).toEqual(["after"]);
  });
});

describe("withTransaction retry on a real serialization failure", () => {
  let pair: Pool;
  beforeAll(() => {
    pair = createPool({ connectionString: database.url, max: 2 });
  });
  afterAll(async () => {
    await pair.end();
  });

  /** Write skew: each reads the whole ledger, then inserts; SERIALIZABLE must abort one. */
  const skew =
    (id: string, meet: () => Promise<void>, calls: string[]) => async (client: PoolClient) => {
      calls.push(id);
      await client.query("SELECT sum(amount) FROM ledger");
      if (calls.filter((call) => call === id).length === 1) await meet();
      await client.query("INSERT INTO ledger VALUES ($1, 1)", [id]);
    };

  it("reruns the transaction that lost, when attempts allow", async () => {
    const meet = barrier(2);
    const calls: string[] = [];
    const warnings: object[] = [];
    const logger = { info: () => undefined, warn: (obj: object) => warnings.push(obj) };
    const options = { isolation: "serializable", attempts: 3, logger } as const;

    await Promise.all([
      withTransaction(pair, skew("x", meet, calls), options),
      withTransaction(pair, skew("y", meet, calls), options),
    ]);

    expect(calls).toHaveLength(3);
    expect(warnings).toEqual([expect.objectContaining({ code: "40001", attempt: 1 })]);
    expect(await ids()).toEqual(["x", "y"]);
  });

  it("rethrows the serialization failure by default, classified retryable", async () => {
    const meet = barrier(2);
    const calls: string[] = [];
    const outcomes = await Promise.allSettled([
      withTransaction(pair, skew("x", meet, calls), { isolation: "serializable" }),
      withTransaction(pair, skew("y", meet, calls), { isolation: "serializable" }),
    ]);
    const failures = outcomes.flatMap((outcome) =>
      outcome.status === "rejected" ? [outcome.reason as unknown] : [],
    );
    expect(calls).toHaveLength(2);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: "40001" });
    expect(isRetryableDbError(failures[0])).toBe(true);
    expect(await ids()).toHaveLength(1);
  });

  it("never retries other errors", async () => {
    let calls = 0;
    await expect(
      withTransaction(
        pair,
        async (client) => {
          calls += 1;
          await client.query("SELEC 1");
        },
        { attempts: 5 },
      ),
    ).rejects.toMatchObject({ code: "42601" });
    expect(calls).toBe(1);
  });
});
