import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MigrationError,
  checkDatabase,
  createPool,
  isRetryableDbError,
  isUniqueViolation,
  loadMigrations,
  migrate,
  query,
  withTransaction,
} from "@safedeploy/db";
import type { Migration } from "@safedeploy/db";
import { createTestDatabase, freePort } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import type { Pool } from "pg";

const migrations: Migration[] = [
  { id: "0001", name: "events", sql: "CREATE TABLE events (id text PRIMARY KEY, n int NOT NULL)" },
  { id: "0002", name: "seed", sql: "INSERT INTO events (id, n) VALUES ('seed', 1)" },
  { id: "0003", name: "index", sql: "CREATE INDEX events_n ON events (n)" },
];

let database: TestDatabase;
const pools: Pool[] = [];
const pool = () => {
  const created = createPool({ connectionString: database.url, max: 4 });
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

describe("migrate", () => {
  it("applies each migration exactly once when three replicas start at once", async () => {
    const reports = await Promise.all([pool(), pool(), pool()].map((p) => migrate(p, migrations)));
    const appliedByAll = reports.flatMap((report) => report.applied);
    expect(appliedByAll.sort()).toEqual(["0001_events", "0002_seed", "0003_index"]);
    expect(reports.filter((report) => report.applied.length === 3)).toHaveLength(1);
    const db = pool();
    expect(await query(db, "SELECT id, n FROM events")).toEqual([{ id: "seed", n: 1 }]);
    expect(await query<{ id: string }>(db, "SELECT id FROM schema_migrations ORDER BY id")).toEqual(
      [{ id: "0001" }, { id: "0002" }, { id: "0003" }],
    );
  });

  it("changes nothing the second time", async () => {
    const report = await migrate(pool(), migrations);
    expect(report).toEqual({
      applied: [],
      alreadyApplied: ["0001_events", "0002_seed", "0003_index"],
    });
  });

  it("refuses an applied migration that was edited, or removed", async () => {
    const edited = migrations.map((m) =>
      m.id === "0002" ? { ...m, sql: `${m.sql} -- edited` } : m,
    );
    await expect(migrate(pool(), edited)).rejects.toThrow(
      /0002_seed was changed after it was applied/,
    );
    await expect(migrate(pool(), migrations.slice(1))).rejects.toThrow(
      /0001_events was applied but is missing/,
    );
  });

  it("rolls a failing migration back entirely and keeps the earlier ones", async () => {
    const broken: Migration[] = [
      ...migrations,
      { id: "0004", name: "half", sql: "CREATE TABLE half (id int); SELECT no_such_function()" },
    ];
    const error = await migrate(pool(), broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(
      /0004_half failed: function no_such_function\(\) does not exist/,
    );
    expect(await query(pool(), "SELECT to_regclass('half') AS t")).toEqual([{ t: null }]);
    expect(await query(pool(), "SELECT count(*)::int AS c FROM schema_migrations")).toEqual([
      { c: 3 },
    ]);
  });

  it("loads NNNN_name.sql files in order and ignores others", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-mig-"));
    writeFileSync(join(dir, "0002_second.sql"), "SELECT 2");
    writeFileSync(join(dir, "0001_first.sql"), "SELECT 1");
    writeFileSync(join(dir, "README.md"), "not a migration");
    const loaded = await loadMigrations(dir);
    expect(loaded.map((m) => `${m.id}_${m.name}`)).toEqual(["0001_first", "0002_second"]);
  });
});

describe("withTransaction", () => {
  it("commits on success and rolls back on failure", async () => {
    const db = pool();
    await withTransaction(db, async (client) => {
      await client.query("INSERT INTO events (id, n) VALUES ('tx-ok', 2)");
    });
    await expect(
      withTransaction(db, async (client) => {
        await client.query("INSERT INTO events (id, n) VALUES ('tx-bad', 3)");
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    const ids = (await query<{ id: string }>(db, "SELECT id FROM events ORDER BY id")).map(
      (r) => r.id,
    );
    expect(ids).toContain("tx-ok");
    expect(ids).not.toContain("tx-bad");
  });

  it("retries a serialization failure", async () => {
    const db = pool();
    let attempts = 0;
    const result = await withTransaction(
      db,
      async (client) => {
        attempts += 1;
        if (attempts === 1) {
          const failure = Object.assign(new Error("could not serialize access"), { code: "40001" });
          throw failure;
        }
        await client.query("SELECT 1");
        return "done";
      },
      { isolation: "serializable" },
    );
    expect(result).toBe("done");
    expect(attempts).toBe(2);
  });
});

describe("error classification", () => {
  it("calls a unique violation terminal and a refused connection retryable", async () => {
    const db = pool();
    const duplicate = await query(db, "INSERT INTO events (id, n) VALUES ('seed', 9)").catch(
      (e: unknown) => e,
    );
    expect(isUniqueViolation(duplicate)).toBe(true);
    expect(isRetryableDbError(duplicate)).toBe(false);
    const closed = createPool({
      connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/x`,
    });
    const refused = await query(closed, "SELECT 1").catch((e: unknown) => e);
    await closed.end();
    expect(isRetryableDbError(refused)).toBe(true);
    expect(isRetryableDbError(new Error("syntax error"))).toBe(false);
  });

  it("answers readiness", async () => {
    await expect(checkDatabase(pool())).resolves.toBeUndefined();
  });
});

describe("createTestDatabase", () => {
  it("creates distinct databases and drops them", async () => {
    const [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    expect(a.name).not.toBe(b.name);
    await a.drop();
    await b.drop();
    const rows = await query<{ n: number }>(
      pool(),
      "SELECT count(*)::int AS n FROM pg_database WHERE datname = ANY($1)",
      [[a.name, b.name]],
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});
