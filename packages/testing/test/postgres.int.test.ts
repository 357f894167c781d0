import pg from "pg";
import { describe, expect, it } from "vitest";
import { freePort } from "../src/process.js";
import {
  createTestDatabase,
  resolveTestDatabaseAdminUrl,
  testDatabaseAdminUrl,
} from "../src/postgres.js";

async function databasesNamed(names: readonly string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: await testDatabaseAdminUrl() });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
      [names],
    );
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

describe("createTestDatabase", () => {
  it("creates distinct, usable databases and drops them", async () => {
    const [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    expect(a.name).toMatch(/^sd_test_[0-9a-f]{12}$/);
    expect(a.name).not.toBe(b.name);
    expect(await databasesNamed([a.name, b.name])).toEqual([a.name, b.name].sort());

    // Each URL points at its own database, and a table in one is invisible in the other.
    const inA = new pg.Client({ connectionString: a.url });
    await inA.connect();
    inA.on("error", () => undefined); // drop() terminates this connection
    await inA.query("CREATE TABLE only_in_a (id int)");
    const { rows } = await inA.query<{ db: string }>("SELECT current_database() AS db");
    expect(rows).toEqual([{ db: a.name }]);
    const inB = new pg.Client({ connectionString: b.url });
    await inB.connect();
    const missing = await inB.query<{ t: string | null }>(
      "SELECT to_regclass('only_in_a')::text AS t",
    );
    expect(missing.rows).toEqual([{ t: null }]);
    await inB.end();

    // drop() succeeds with a connection still open, and a second call does nothing.
    await a.drop();
    await Promise.all([b.drop(), b.drop()]);
    await a.drop();
    expect(await databasesNamed([a.name, b.name])).toEqual([]);
    await inA.end().catch(() => undefined);
  });
});

describe("resolveTestDatabaseAdminUrl", () => {
  it("uses DATABASE_URL when it answers", async () => {
    const admin = await testDatabaseAdminUrl();
    await expect(resolveTestDatabaseAdminUrl({ databaseUrl: admin })).resolves.toBe(admin);
  });

  it("takes the first local server that answers", async () => {
    const admin = await testDatabaseAdminUrl();
    const closed = `postgres://postgres@127.0.0.1:${await freePort()}/test`;
    await expect(
      resolveTestDatabaseAdminUrl({
        localUrls: [closed, admin],
        dockerAvailable: () => Promise.reject(new Error("must not be asked")),
      }),
    ).resolves.toBe(admin);
  });

  it("says what it tried and how to fix it when nothing answers", async () => {
    const port = await freePort();
    const closed = [
      `postgres://postgres@127.0.0.1:${port}/test`,
      `postgres://root@127.0.0.1:${port}/test`,
    ];
    const error = await resolveTestDatabaseAdminUrl({
      localUrls: closed,
      dockerAvailable: () => Promise.resolve(false),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain("DATABASE_URL: not set");
    for (const url of closed) expect(message).toContain(`${url}: connect ECONNREFUSED`);
    expect(message).toMatch(/Docker engine \(.+\): not reachable/);
    expect(message).toMatch(/set DATABASE_URL/);
    expect(message).toMatch(/127\.0\.0\.1:5432 with trust auth/);
    expect(message).toMatch(/postgres:17-alpine/);
  });

  it("insists on a DATABASE_URL that was set, without printing its password", async () => {
    const url = `postgres://sd:hunter2@127.0.0.1:${await freePort()}/test`;
    const error = await resolveTestDatabaseAdminUrl({
      databaseUrl: url,
      dockerAvailable: () => Promise.reject(new Error("must not be asked")),
    }).catch((e: unknown) => e);
    const message = (error as Error).message;
    expect(message).toMatch(
      /^DATABASE_URL=postgres:\/\/sd:\*\*\*@127\.0\.0\.1:\d+\/test does not answer: connect ECONNREFUSED/,
    );
    expect(message).not.toContain("hunter2");
  });
});
