import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import type { Pool } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DatabaseUnavailableError,
  MigrationError,
  checkDatabase,
  createPool,
  isRetryableDbError,
  isUniqueViolation,
  query,
} from "@safedeploy/db";
import type { DbLogger } from "@safedeploy/db";
import { createTestDatabase, freePort } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";

let database: TestDatabase;
const pools: Pool[] = [];
const warnings: string[] = [];
const logger: DbLogger = {
  info: () => undefined,
  warn: (_obj, msg) => warnings.push(msg),
};

const pool = (connectionString = database.url, max = 2, applicationName = "sd-pool-test"): Pool => {
  const created = createPool({ connectionString, max, logger, applicationName });
  pools.push(created);
  return created;
};

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await database.drop();
});

/** A TCP server that accepts connections and never says a word: a hung database. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `postgres://postgres@127.0.0.1:${address.port}/x`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

async function terminate(admin: Pool, applicationName: string, state: string): Promise<number> {
  const rows = await query<{ n: number }>(
    admin,
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND state = $2 AND pid <> pg_backend_pid()`,
    [applicationName, state],
  );
  return rows[0]?.n ?? 0;
}

describe("createPool", () => {
  it("names its connections and runs typed queries", async () => {
    const rows = await query<{ name: string }>(
      pool(),
      "SELECT current_setting('application_name') AS name",
    );
    expect(rows).toEqual([{ name: "sd-pool-test" }]);
  });

  it("survives an idle connection being killed, and reconnects", async () => {
    const victim = pool(database.url, 2, "sd-idle-victim");
    await query(victim, "SELECT 1");
    expect(victim.idleCount).toBe(1);
    const admin = pool(database.url, 1, "sd-admin");

    expect(await terminate(admin, "sd-idle-victim", "idle")).toBe(1);

    // The pool noticed on its own, logged it and let the dead connection go.
    await expect.poll(() => victim.totalCount).toBe(0);
    expect(warnings).toContain("idle PostgreSQL connection failed; it will be replaced");
    expect(await query(victim, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });

  it("survives a checked-out connection being killed mid-query", async () => {
    const victim = pool(database.url, 2, "sd-busy-victim");
    const client = await victim.connect();
    const sleeping = client.query("SELECT pg_sleep(30)").catch((error: unknown) => error);
    const admin = pool(database.url, 1, "sd-admin");
    await expect.poll(() => terminate(admin, "sd-busy-victim", "active")).toBe(1);

    const failure = await sleeping;
    expect(failure).toMatchObject({ code: "57P01" });
    expect(isRetryableDbError(failure)).toBe(true);
    await expect.poll(() => warnings).toContain("PostgreSQL connection failed while in use");
    client.release(true);
    expect(await query(victim, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });

  it("returns rows through a parser when given one", async () => {
    const parse = (row: unknown): { n: number } => {
      const n = (row as { n?: unknown }).n;
      if (typeof n !== "number") throw new TypeError(`n is not a number: ${JSON.stringify(n)}`);
      return { n };
    };
    expect(await query(pool(), "SELECT 1 AS n", [], parse)).toEqual([{ n: 1 }]);
    await expect(query(pool(), "SELECT 'one' AS n", [], parse)).rejects.toThrow(
      /n is not a number: "one"/,
    );
  });
});

describe("checkDatabase", () => {
  it("resolves when the database answers, and leaves no session state behind", async () => {
    const single = pool(database.url, 1);
    await expect(checkDatabase(single)).resolves.toBeUndefined();
    expect(await query(single, "SELECT current_setting('statement_timeout') AS t")).toEqual([
      { t: "0" },
    ]);
  });

  it("rejects retryably when nothing listens", async () => {
    const closed = pool(`postgres://postgres@127.0.0.1:${await freePort()}/x`);
    const failure = await checkDatabase(closed).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect(failure).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/ECONNREFUSED/) as unknown,
    });
  });

  it("gives up at its deadline when the server hangs, and honours an abort signal", async () => {
    const hung = await silentServer();
    try {
      const slow = pool(hung.url);
      const started = Date.now();
      await expect(checkDatabase(slow, { timeoutMs: 200 })).rejects.toThrow(
        /database did not answer within 200 ms/,
      );
      expect(Date.now() - started).toBeLessThan(1_500);
      const controller = new AbortController();
      const checking = checkDatabase(slow, { signal: controller.signal, timeoutMs: 10_000 });
      controller.abort();
      await expect(checking).rejects.toThrow(/database check aborted/);
    } finally {
      await hung.close();
    }
  });
});

describe("isRetryableDbError", () => {
  it("calls real constraint and syntax errors terminal", async () => {
    const db = pool();
    await query(db, "CREATE TABLE uniq (id int PRIMARY KEY)");
    await query(db, "INSERT INTO uniq VALUES (1)");
    const duplicate = await query(db, "INSERT INTO uniq VALUES (1)").catch(
      (error: unknown) => error,
    );
    expect(isUniqueViolation(duplicate)).toBe(true);
    expect(isRetryableDbError(duplicate)).toBe(false);
    const syntax = await query(db, "SELEC 1").catch((error: unknown) => error);
    expect(syntax).toMatchObject({ code: "42601" });
    expect(isRetryableDbError(syntax)).toBe(false);
  });

  it("calls a refused connection retryable", async () => {
    const closed = pool(`postgres://postgres@127.0.0.1:${await freePort()}/x`);
    const refused = await query(closed, "SELECT 1").catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "ECONNREFUSED" });
    expect(isRetryableDbError(refused)).toBe(true);
  });

  it("follows its own errors' retryable flag and a wrapper's cause", () => {
    const lost = Object.assign(new Error("terminating connection"), { code: "57P01" });
    expect(isRetryableDbError(new MigrationError("failed", { cause: lost }))).toBe(true);
    expect(isRetryableDbError(new MigrationError("edited"))).toBe(false);
    expect(isRetryableDbError(new Error("wrapped", { cause: lost }))).toBe(true);
    expect(isRetryableDbError(new Error("Connection terminated unexpectedly"))).toBe(true);
    for (const code of ["08006", "57P03", "40P01", "53300", "ECONNRESET"]) {
      expect(isRetryableDbError(Object.assign(new Error(code), { code }))).toBe(true);
    }
    for (const terminal of [new Error("boom"), "text", undefined, null, { code: 23505 }]) {
      expect(isRetryableDbError(terminal)).toBe(false);
    }
  });
});
