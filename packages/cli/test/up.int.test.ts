import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateAudit } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { demoCatalog } from "@safedeploy/demo";
import { spawnCollecting } from "@safedeploy/testing";
import { startPglite } from "../src/stack/postgres.js";
import { formatLogLine, Supervisor } from "../src/stack/supervisor.js";
import { findExecutable } from "../src/stack/tools.js";
import type { EmbeddedPostgres } from "../src/stack/postgres.js";

const exec = promisify(execFile);
const WORKER = join(import.meta.dirname, "fixtures", "pg-worker.mjs");
const FAKE = join(import.meta.dirname, "fixtures", "crashy-service.mjs");
const BIN = join(import.meta.dirname, "..", "bin", "safedeploy.js");

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const until = async (probe: () => boolean, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/*
 * The proof the issue asks for: what `safedeploy up` relies on when DATABASE_URL is unset and no
 * PostgreSQL is installed, exercised through the PGlite socket from several OS processes.
 */
describe("embedded PGlite through the pglite-socket multiplexer", () => {
  let dir: string;
  let pg: EmbeddedPostgres;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sd-pglite-"));
    pg = await startPglite(join(dir, "pg"));
  });
  afterAll(async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the audit migrations (packages/db migrate + migrateAudit), then finds them applied", async () => {
    const pool = createPool({ connectionString: pg.url, max: 4 });
    try {
      const first = await migrateAudit(pool);
      expect(first.applied.length).toBeGreaterThan(0);
      const again = await migrateAudit(pool);
      expect(again.applied).toEqual([]);
      const { rows } = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM schema_migrations",
      );
      expect(Number(rows[0]?.n)).toBe(first.applied.length);
    } finally {
      await pool.end();
    }
  });

  it("transactions with pg_advisory_xact_lock from 4 processes: no lost update, no crossed answers, rollbacks roll back", async () => {
    const pool = createPool({ connectionString: pg.url, max: 2 });
    try {
      await pool.query("CREATE TABLE proof_counter (id int PRIMARY KEY, n int NOT NULL)");
      await pool.query("INSERT INTO proof_counter VALUES (1, 0)");
      await pool.query("CREATE TABLE proof_log (worker text NOT NULL, seq int NOT NULL)");
      const iterations = 25;
      const workers = ["a", "b", "c", "d"];
      const results = await Promise.all(
        workers.map(async (id) => {
          const { stdout } = await exec(
            process.execPath,
            [WORKER, pg.url, id, String(iterations)],
            {
              cwd: import.meta.dirname,
            },
          );
          return JSON.parse(stdout) as {
            increments: number;
            mismatches: number;
            rolledBack: boolean;
          };
        }),
      );
      for (const result of results) {
        expect(result).toMatchObject({ increments: iterations, mismatches: 0, rolledBack: true });
      }
      const { rows } = await pool.query<{ n: number }>("SELECT n FROM proof_counter WHERE id = 1");
      expect(rows[0]?.n).toBe(iterations * workers.length);
      const log = await pool.query<{ n: string }>("SELECT count(*) AS n FROM proof_log");
      expect(Number(log.rows[0]?.n)).toBe(iterations * workers.length);
      const negative = await pool.query("SELECT 1 FROM proof_log WHERE seq = -1");
      expect(negative.rowCount).toBe(0);
    } finally {
      await pool.end();
    }
  }, 120_000);

  it("data survives a restart of the embedded server", async () => {
    await pg.stop();
    pg = await startPglite(join(dir, "pg"));
    const pool = createPool({ connectionString: pg.url, max: 1 });
    try {
      const { rows } = await pool.query<{ n: number }>("SELECT n FROM proof_counter WHERE id = 1");
      expect(rows[0]?.n).toBe(100);
      expect((await migrateAudit(pool)).applied).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it("session-level advisory locks are NOT exclusive across connections (one shared backend session)", async () => {
    const a = createPool({ connectionString: pg.url, max: 1 });
    const b = createPool({ connectionString: pg.url, max: 1 });
    try {
      const first = await a.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(777) AS ok");
      const second = await b.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(777) AS ok");
      expect(first.rows[0]?.ok).toBe(true);
      // On a real PostgreSQL this is false. Through PGlite every connection is the same session, so
      // `migrate`'s session lock does not keep concurrent migrators apart: `safedeploy up` migrates
      // once itself before starting any service.
      expect(second.rows[0]?.ok).toBe(true);
      await a.query("SELECT pg_advisory_unlock_all()");
    } finally {
      await a.end();
      await b.end();
    }
  });
});

describe("up's supervisor (test doubles of processes only)", () => {
  it("prefixes each line with the service, makes pino JSON readable, restarts a crashed service with backoff", async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({ write: (line) => lines.push(line), backoffMs: [100, 200] });
    supervisor.start({
      name: "policy",
      command: process.execPath,
      args: [FAKE],
      env: { ...process.env, CRASH_AFTER_MS: "150", NAME: "policy" },
    });
    supervisor.start({ name: "budget", command: process.execPath, args: [FAKE], env: process.env });
    await until(() => supervisor.restarts("policy") >= 2, 10_000, "two restarts");
    await supervisor.stop(5_000);
    const text = lines.join("");
    expect(text).toMatch(/^\[policy\] +info {2}started$/m);
    expect(text).toMatch(/^\[policy\] +plain line from policy$/m);
    expect(text).toMatch(/^\[policy\] +crashed \(exit code 1\); restart #1 in 100 ms$/m);
    expect(text).toMatch(/^\[policy\] +crashed \(exit code 1\); restart #2 in 200 ms$/m);
    expect(text).toMatch(/^\[budget\] +info {2}stopping$/m);
    expect(supervisor.restarts("budget")).toBe(0);
    expect(supervisor.pids()).toEqual([]);
  }, 20_000);

  it("formats pino errors by their message", () => {
    expect(
      formatLogLine(JSON.stringify({ level: 50, msg: "failed", err: { message: "boom" } })),
    ).toBe('error failed err="boom"');
    expect(formatLogLine("not json")).toBe("not json");
  });
});

const natsInstalled = findExecutable("nats-server", process.env) !== undefined;

describe.skipIf(!natsInstalled)("safedeploy up, the real binary", () => {
  beforeAll(async () => {
    // The binary runs packages/cli/dist: build it (incremental, quick when up to date).
    const root = join(import.meta.dirname, "..", "..", "..");
    await exec(
      process.execPath,
      [join(root, "node_modules/typescript/bin/tsc"), "-b", "packages/cli"],
      {
        cwd: root,
      },
    );
  }, 120_000);

  it("starts every service, says where the dashboard is, and Ctrl-C (SIGINT) stops them all, then its servers", async () => {
    const home = mkdtempSync(join(tmpdir(), "sd-up-"));
    const catalog = join(home, "catalog.yaml");
    writeFileSync(catalog, demoCatalog());
    const env: Record<string, string | undefined> = {
      ...process.env,
      SAFEDEPLOY_HOME: home,
      SAFEDEPLOY_CATALOG: catalog,
      LOG_LEVEL: "warn",
      // Nothing listens there: the collector waits for Prometheus and up does not wait for it.
      PROMETHEUS_URL: "http://127.0.0.1:9",
      NO_COLOR: "1",
    };
    delete env.NATS_URL;
    delete env.DATABASE_URL;
    delete env.SAFEDEPLOY_ENV_REPO;
    const { child, exited, output } = spawnCollecting(process.execPath, [BIN, "up"], env);
    try {
      await until(
        () => output().includes("SafeDeploy is up"),
        150_000,
        `up to be ready:\n${output()}`,
      );
      expect(output()).toContain("not starting the git actuator");
      expect(output()).toMatch(/nats-server with JetStream on nats:\/\/127\.0\.0\.1:\d+/);
      expect(output()).toContain("the collector waits for it");
      expect(output()).not.toContain("not ready yet");
      expect(output()).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d{2,5}\//);
      const { stdout } = await exec("ps", ["-o", "pid=", "--ppid", String(child.pid)]);
      const pids = stdout
        .split("\n")
        .map((line) => Number(line.trim()))
        .filter((pid) => pid > 0);
      // Nine services (no git actuator without an env repo; the notifier included) and nats-server.
      expect(pids.length).toBe(10);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(output()).toContain("[up] stopped");
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    }
  }, 200_000);
});
