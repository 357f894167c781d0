// `safedeploy up` on a developer's machine (not root) starts a private PostgreSQL cluster with
// initdb and pg_ctl. These tests run as root, where PostgreSQL refuses to start, so the cluster is
// started by a child process that dropped to `nobody` (setpriv), through the same code: initdb
// once, pg_ctl on a free port, trust on 127.0.0.1; the audit migrations then run against it.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { chmod, chown, copyFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateAudit } from "@safedeploy/audit";
import { createPool, query } from "@safedeploy/db";
import { findPostgresTools } from "../src/stack/postgres.js";
import { findExecutable } from "../src/stack/tools.js";

const exec = promisify(execFile);
const tools = findPostgresTools(process.env);
const asRoot = process.getuid?.() === 0;
const setpriv = findExecutable("setpriv", process.env, ["/usr/bin", "/bin"]);
/** The compiled module the stack uses (the child imports it as `up` does). */
const postgresModule = pathToFileURL(
  join(import.meta.dirname, "..", "dist", "stack", "postgres.js"),
).href;

/** What the child runs: start the cluster, print its URL, stop it when stdin closes. */
const CHILD = `
const { findPostgresTools, startNativePostgres } = await import(process.argv[2]);
const cluster = await startNativePostgres(findPostgresTools(process.env), process.argv[3], 0);
process.stdout.write(JSON.stringify({ url: cluster.url, description: cluster.description }) + "\\n");
process.stdin.resume();
process.stdin.on("end", async () => { await cluster.stop(); process.exit(0); });
`;

let dir: string;
let node: string;
/** Clusters not stopped yet: afterAll stops them, whatever failed. */
const running = new Set<Cluster>();
let user: { uid: number; gid: number } | null = null;

interface Cluster {
  readonly url: string;
  readonly description: string;
  stop(): Promise<void>;
}

/** Starts the cluster in `dataDir` from a child process (as `nobody` when the test is root). */
async function startCluster(dataDir: string): Promise<Cluster> {
  const args = [join(dir, "child.mjs"), postgresModule, dataDir];
  const env = { PATH: process.env.PATH ?? "", HOME: dir };
  const child: ChildProcess =
    user === null
      ? spawn(node, args, { env, stdio: ["pipe", "pipe", "pipe"] })
      : spawn(
          setpriv!,
          [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", node, ...args],
          { env, stdio: ["pipe", "pipe", "pipe"] },
        );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    void exited.then((code) => {
      reject(new Error(`the cluster's process exited (${code}) before it started:\n${stderr}`));
    });
  });
  const started = JSON.parse(line) as { url: string; description: string };
  const cluster: Cluster = {
    ...started,
    stop: async () => {
      running.delete(cluster);
      child.stdin?.end();
      expect(await exited).toBe(0);
    },
  };
  running.add(cluster);
  return cluster;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-native-pg-"));
  await writeFile(join(dir, "child.mjs"), CHILD);
  node = process.execPath;
  if (asRoot) {
    const [uid, gid] = await Promise.all([
      exec("id", ["-u", "nobody"]).then((r) => Number(r.stdout.trim())),
      exec("id", ["-g", "nobody"]).then((r) => Number(r.stdout.trim())),
    ]);
    user = { uid, gid };
    // nobody cannot reach this Node under root's home: a copy it can run.
    node = join(dir, "node");
    await copyFile(process.execPath, node);
    await chmod(node, 0o755);
    await chmod(dir, 0o755);
    await chown(dir, uid, gid);
  }
}, 30_000);

afterAll(async () => {
  for (const cluster of running) await cluster.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(tools === undefined || (asRoot && setpriv === undefined))(
  "the private PostgreSQL cluster of `up` (not root)",
  () => {
    it("initdb once, pg_ctl on a free port, trust on 127.0.0.1: the audit schema migrates and stays", async () => {
      const dataDir = join(dir, "pg", "cluster");
      const first = await startCluster(dataDir);
      expect(first.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      expect(first.description).toContain(`data in ${dataDir}`);
      let pool = createPool({ connectionString: first.url, max: 2 });
      try {
        const applied = await migrateAudit(pool);
        expect(applied.applied).toContain("0001_audit_log");
        const [row] = await query<{ version: string }>(
          pool,
          "SELECT current_setting('server_version') AS version",
        );
        expect(row?.version).toMatch(/^\d+/);
      } finally {
        await pool.end();
      }
      await first.stop();
      if (user !== null) expect((await stat(join(dataDir, "PG_VERSION"))).uid).toBe(user.uid);

      // A second start finds the cluster (no second initdb) and its data.
      const second = await startCluster(dataDir);
      pool = createPool({ connectionString: second.url, max: 2 });
      try {
        expect((await migrateAudit(pool)).applied).toEqual([]);
        const tables = await query<{ name: string }>(
          pool,
          "SELECT tablename AS name FROM pg_tables WHERE tablename = 'audit_log'",
        );
        expect(tables).toHaveLength(1);
      } finally {
        await pool.end();
        await second.stop();
      }
    }, 90_000);
  },
);
