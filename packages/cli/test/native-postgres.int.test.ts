// `safedeploy up` on a developer's machine (not root) starts a private PostgreSQL cluster with
// initdb and pg_ctl. The tests may run as root, where PostgreSQL refuses to start: then
// `startNativePostgres` runs here as it is, and only the PostgreSQL binaries it calls run as
// `nobody` (through wrappers that hand the data directory to nobody first, as an unprivileged
// user would own it).
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateAudit } from "@safedeploy/audit";
import { createPool, query } from "@safedeploy/db";
import { findPostgresTools, startNativePostgres } from "../src/stack/postgres.js";
import type { EmbeddedPostgres } from "../src/stack/postgres.js";
import { findExecutable } from "../src/stack/tools.js";

const exec = promisify(execFile);
const found = findPostgresTools(process.env);
const asRoot = process.getuid?.() === 0;
const setpriv = findExecutable("setpriv", process.env, ["/usr/bin", "/bin"]);

let dir: string;
let tools: { initdb: string; pgCtl: string };
let nobody: { uid: number; gid: number } | null = null;
/** Clusters not stopped yet: afterAll stops them, whatever failed. */
const running = new Set<EmbeddedPostgres>();

/** A wrapper that runs `tool` as nobody, after giving nobody the `-D` data directory. */
async function asNobody(tool: string, name: string): Promise<string> {
  const wrapper = join(dir, name);
  await writeFile(
    wrapper,
    `#!/bin/sh
data=""; previous=""
for arg in "$@"; do [ "$previous" = "-D" ] && data="$arg"; previous="$arg"; done
[ -n "$data" ] && [ -d "$data" ] && chown -R ${nobody!.uid}:${nobody!.gid} "$data"
exec ${setpriv!} --reuid=${nobody!.uid} --regid=${nobody!.gid} --clear-groups ${tool} "$@"
`,
  );
  await chmod(wrapper, 0o755);
  return wrapper;
}

async function start(dataDir: string): Promise<EmbeddedPostgres> {
  const cluster = await startNativePostgres(tools, dataDir, 0);
  running.add(cluster);
  return cluster;
}

async function stop(cluster: EmbeddedPostgres): Promise<void> {
  running.delete(cluster);
  await cluster.stop();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-native-pg-"));
  if (found === undefined) return;
  tools = found;
  if (asRoot && setpriv !== undefined) {
    const id = async (flag: string) => Number((await exec("id", [flag, "nobody"])).stdout.trim());
    nobody = { uid: await id("-u"), gid: await id("-g") };
    await chmod(dir, 0o755);
    await chown(dir, nobody.uid, nobody.gid);
    tools = {
      initdb: await asNobody(found.initdb, "initdb"),
      pgCtl: await asNobody(found.pgCtl, "pg_ctl"),
    };
  }
});

afterAll(async () => {
  for (const cluster of running) await stop(cluster).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(found === undefined || (asRoot && setpriv === undefined))(
  "the private PostgreSQL cluster of `up` (not root)",
  () => {
    it("initdb once, pg_ctl on a free port, trust on 127.0.0.1: the audit schema migrates and stays", async () => {
      // up's layout: <home>/pg/cluster, where <home> belongs to the user running it.
      await mkdir(join(dir, "pg"));
      if (nobody !== null) await chown(join(dir, "pg"), nobody.uid, nobody.gid);
      const dataDir = join(dir, "pg", "cluster");
      const first = await start(dataDir);
      expect(first).toMatchObject({ kind: "postgres", dataDir });
      expect(first.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      let pool = createPool({ connectionString: first.url, max: 2 });
      try {
        expect((await migrateAudit(pool)).applied).toContain("0001_audit_log");
        const [row] = await query<{ version: string }>(
          pool,
          "SELECT current_setting('server_version') AS version",
        );
        expect(row?.version).toMatch(/^\d+/);
      } finally {
        await pool.end();
      }
      await stop(first);
      if (nobody !== null) expect((await stat(join(dataDir, "PG_VERSION"))).uid).toBe(nobody.uid);

      // A second start finds the cluster (no second initdb) and its data.
      const second = await start(dataDir);
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
        await stop(second);
      }
    }, 90_000);
  },
);
