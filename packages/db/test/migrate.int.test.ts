import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pool } from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { MigrationError, createPool, loadMigrations, migrate, query } from "@safedeploy/db";
import type { DbLogger, Migration } from "@safedeploy/db";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";

const migrations: Migration[] = [
  {
    id: "0001",
    name: "side_effects",
    sql: "CREATE TABLE side_effects (n serial PRIMARY KEY, note text NOT NULL)",
  },
  // Slow enough that the other replicas really queue on the lock behind it.
  {
    id: "0002",
    name: "seed",
    sql: "SELECT pg_sleep(0.3); INSERT INTO side_effects (note) VALUES ('0002 ran')",
  },
  { id: "0003", name: "index", sql: "CREATE INDEX side_effects_note ON side_effects (note)" },
];

const databases: TestDatabase[] = [];
const pools: Pool[] = [];

/** A fresh database per test: migration history is exactly what that test made it. */
async function freshDatabase(): Promise<{ url: string; pool: () => Pool }> {
  const database = await createTestDatabase();
  databases.push(database);
  return {
    url: database.url,
    pool: () => {
      const pool = createPool({ connectionString: database.url, max: 2 });
      pools.push(pool);
      return pool;
    },
  };
}

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await Promise.all(databases.map((database) => database.drop()));
});

function recordingLogger(): DbLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (_obj, msg) => lines.push(msg),
    warn: (_obj, msg) => lines.push(msg),
  };
}

const advisoryLocks = async (pool: Pool) =>
  query<{ n: number }>(
    pool,
    `SELECT count(*)::int AS n FROM pg_locks
      WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );

describe("migrate", () => {
  it("applies each migration exactly once when three processes start at once", async () => {
    const db = await freshDatabase();
    const log = recordingLogger();
    const reports = await Promise.all(
      [db.pool(), db.pool(), db.pool()].map((p) => migrate(p, migrations, { logger: log })),
    );

    // They really raced: at least one found the lock taken and waited.
    expect(log.lines).toContain("another process is migrating; waiting for its lock");

    expect(reports.flatMap((report) => report.applied)).toEqual([
      "0001_side_effects",
      "0002_seed",
      "0003_index",
    ]);
    const idle = reports.filter((report) => report.applied.length === 0);
    expect(idle).toHaveLength(2);
    for (const report of idle) {
      expect(report.alreadyApplied).toEqual(["0001_side_effects", "0002_seed", "0003_index"]);
    }
    const reader = db.pool();
    expect(await query(reader, "SELECT note FROM side_effects")).toEqual([{ note: "0002 ran" }]);
    const rows = await query<{ id: string; name: string; checksum: string; applied_at: Date }>(
      reader,
      "SELECT id, name, checksum, applied_at FROM schema_migrations ORDER BY id",
    );
    expect(rows.map((row) => `${row.id}_${row.name}`)).toEqual([
      "0001_side_effects",
      "0002_seed",
      "0003_index",
    ]);
    for (const row of rows) {
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.applied_at).toBeInstanceOf(Date);
    }
    expect(await advisoryLocks(reader)).toEqual([{ n: 0 }]);
  });

  it("changes nothing when run again", async () => {
    const db = await freshDatabase();
    await migrate(db.pool(), migrations);
    const before = await query(db.pool(), "SELECT * FROM schema_migrations ORDER BY id");

    const report = await migrate(db.pool(), migrations);

    expect(report).toEqual({
      applied: [],
      alreadyApplied: ["0001_side_effects", "0002_seed", "0003_index"],
    });
    expect(await query(db.pool(), "SELECT * FROM schema_migrations ORDER BY id")).toEqual(before);
    expect(await query(db.pool(), "SELECT count(*)::int AS n FROM side_effects")).toEqual([
      { n: 1 },
    ]);
  });

  it("applies only the new migrations of a longer list", async () => {
    const db = await freshDatabase();
    await migrate(db.pool(), migrations.slice(0, 2));
    const report = await migrate(db.pool(), migrations);
    expect(report).toEqual({
      applied: ["0003_index"],
      alreadyApplied: ["0001_side_effects", "0002_seed"],
    });
  });

  it("refuses an applied migration whose SQL changed, naming it", async () => {
    const db = await freshDatabase();
    await migrate(db.pool(), migrations);
    const edited = migrations.map((m) =>
      m.id === "0002" ? { ...m, sql: m.sql.replace("0002 ran", "0002 ran twice") } : m,
    );
    const error = await migrate(db.pool(), [
      ...edited,
      { id: "0004", name: "new", sql: "SELECT 1" },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({
      migration: "0002_seed",
      retryable: false,
      message: expect.stringMatching(/0002_seed was changed after it was applied/) as unknown,
    });
    // Refused before anything ran: the new migration was not applied either.
    expect(await query(db.pool(), "SELECT count(*)::int AS n FROM schema_migrations")).toEqual([
      { n: 3 },
    ]);
  });

  it("reads CRLF line endings as the same migration", async () => {
    const db = await freshDatabase();
    const multiline: Migration = { id: "0001", name: "t", sql: "CREATE TABLE t (\n  id int\n)" };
    await migrate(db.pool(), [multiline]);
    const report = await migrate(db.pool(), [
      { ...multiline, sql: multiline.sql.replace(/\n/g, "\r\n") },
    ]);
    expect(report.alreadyApplied).toEqual(["0001_t"]);
  });

  it("refuses a history that lost, renamed or slipped in a migration", async () => {
    const db = await freshDatabase();
    await migrate(db.pool(), [migrations[0]!, migrations[2]!]);

    await expect(migrate(db.pool(), [migrations[2]!])).rejects.toThrow(
      /0001_side_effects was applied but is missing from the list/,
    );
    await expect(
      migrate(db.pool(), [{ ...migrations[0]!, name: "renamed" }, migrations[2]!]),
    ).rejects.toThrow(
      /0001_side_effects was applied under that name but is now called 0001_renamed/,
    );
    await expect(migrate(db.pool(), migrations)).rejects.toThrow(
      /0002_seed is numbered before 0003_index, which is already applied/,
    );
  });

  it("rolls a failing migration back entirely and keeps the ones before it", async () => {
    const db = await freshDatabase();
    const broken: Migration[] = [
      ...migrations.slice(0, 2),
      {
        id: "0003",
        name: "half",
        sql: "CREATE TABLE half (id int); INSERT INTO side_effects (note) VALUES ('half'); SELECT no_such_function()",
      },
      { id: "0004", name: "after", sql: "CREATE TABLE after_half (id int)" },
    ];

    const error = await migrate(db.pool(), broken).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({ migration: "0003_half", retryable: false });
    expect((error as Error).message).toMatch(
      /migration 0003_half failed: function no_such_function\(\) does not exist/,
    );
    expect((error as Error).cause).toMatchObject({ code: "42883" });
    const reader = db.pool();
    expect(
      await query(
        reader,
        "SELECT to_regclass('half')::text AS t, to_regclass('after_half')::text AS u",
      ),
    ).toEqual([{ t: null, u: null }]);
    expect(await query(reader, "SELECT note FROM side_effects")).toEqual([{ note: "0002 ran" }]);
    expect(await query(reader, "SELECT id FROM schema_migrations ORDER BY id")).toEqual([
      { id: "0001" },
      { id: "0002" },
    ]);
    expect(await advisoryLocks(reader)).toEqual([{ n: 0 }]);

    const fixed = broken.map((m) =>
      m.id === "0003" ? { ...m, sql: "CREATE TABLE half (id int)" } : m,
    );
    expect(await migrate(reader, fixed)).toEqual({
      applied: ["0003_half", "0004_after"],
      alreadyApplied: ["0001_side_effects", "0002_seed"],
    });
  });

  it("waits for another holder of the lock, using the given table and bigint key", async () => {
    const db = await freshDatabase();
    const lockKey = 2n ** 62n + 7n;
    const holder = await db.pool().connect();
    await holder.query("SELECT pg_advisory_lock($1::bigint)", [lockKey.toString()]);
    const log = recordingLogger();

    const running = migrate(db.pool(), migrations.slice(0, 1), {
      table: "public.app_migrations",
      lockKey,
      logger: log,
    });
    await expect
      .poll(() => log.lines)
      .toContain("another process is migrating; waiting for its lock");
    expect(await query(db.pool(), "SELECT to_regclass('side_effects')::text AS t")).toEqual([
      { t: null },
    ]);
    await holder.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey.toString()]);
    holder.release();

    expect(await running).toEqual({ applied: ["0001_side_effects"], alreadyApplied: [] });
    expect(log.lines).toContain("migration applied");
    expect(await query(db.pool(), "SELECT id FROM app_migrations")).toEqual([{ id: "0001" }]);
  });

  it("refuses bad options and a malformed list before touching the database", async () => {
    const db = await freshDatabase();
    const pool = db.pool();
    await expect(migrate(pool, [], { table: "x; DROP TABLE y" })).rejects.toThrow(
      /not a plain table name/,
    );
    await expect(migrate(pool, [], { lockKey: 2n ** 63n })).rejects.toThrow(
      /fit in a PostgreSQL bigint/,
    );
    await expect(migrate(pool, [], { lockKey: 1.5 })).rejects.toThrow(/safe integer/);
    await expect(migrate(pool, [migrations[1]!, migrations[0]!])).rejects.toThrow(
      /0001_side_effects is listed after 0002_seed/,
    );
    await expect(migrate(pool, [{ id: "1", name: "short", sql: "" }])).rejects.toThrow(/NNNN_name/);
    expect(await query(pool, "SELECT to_regclass('schema_migrations')::text AS t")).toEqual([
      { t: null },
    ]);
  });
});

describe("loadMigrations", () => {
  const dirWith = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), "sd-migrations-"));
    for (const [file, sql] of Object.entries(files)) writeFileSync(join(dir, file), sql);
    return dir;
  };

  it("reads NNNN_name.sql files in order and ignores other files", async () => {
    const dir = dirWith({
      "0002_second.sql": "SELECT 2",
      "0010_tenth.sql": "SELECT 10",
      "0001_first-one.sql": "SELECT 1",
      "README.md": "not a migration",
    });
    expect(await loadMigrations(dir)).toEqual([
      { id: "0001", name: "first-one", sql: "SELECT 1" },
      { id: "0002", name: "second", sql: "SELECT 2" },
      { id: "0010", name: "tenth", sql: "SELECT 10" },
    ]);
  });

  it("refuses a .sql file it would otherwise skip, and a shared number", async () => {
    await expect(
      loadMigrations(dirWith({ "0001_first.sql": "", "2_second.sql": "" })),
    ).rejects.toThrow(/2_second\.sql is not named NNNN_name\.sql/);
    await expect(loadMigrations(dirWith({ "0001_Upper.sql": "" }))).rejects.toThrow(MigrationError);
    await expect(loadMigrations(dirWith({ "0001_a.sql": "", "0001_b.sql": "" }))).rejects.toThrow(
      /0001_a and 0001_b share the number 0001/,
    );
  });
});
