import { execFile, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { serveDb } from "./pglite-mux.js";
import { findExecutable, portOr, postgresBinDirs, waitUntil, StackError } from "./tools.js";

const exec = promisify(execFile);

/** A PostgreSQL the stack started: its connection string and how to stop it. */
export interface EmbeddedPostgres {
  readonly kind: "postgres" | "pglite";
  readonly url: string;
  readonly dataDir: string;
  /** One line for the startup banner. */
  readonly description: string;
  stop(): Promise<void>;
}

/**
 * Serves an embedded PGlite (WASM PostgreSQL, data in `dataDir`) on a local TCP port through
 * `@electric-sql/pglite-socket`. Its multiplexer lets many connections (from many processes) share
 * the one single-session database: queries run one at a time, and while a connection is inside a
 * transaction only that connection's queries run, so transactions are serialized. See README,
 * "Embedded PostgreSQL (PGlite)" for what this does not give (session-level advisory locks are
 * shared by all connections).
 */
export async function startPglite(
  dataDir: string,
  options: { readonly port?: number } = {},
): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const server = await serveDb(db, "127.0.0.1", options.port ?? (await portOr(0)));
  const port = server.port;
  return {
    kind: "pglite",
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    description: `embedded PGlite on 127.0.0.1:${port} (data in ${dataDir})`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/** initdb and pg_ctl from PATH or /usr/lib/postgresql/<v>/bin, when both are there. */
export function findPostgresTools(
  env: Readonly<Record<string, string | undefined>>,
): { initdb: string; pgCtl: string } | undefined {
  for (const dir of [undefined, ...postgresBinDirs()]) {
    const extra = dir === undefined ? [] : [dir];
    const scoped = dir === undefined ? env : { PATH: "" };
    const initdb = findExecutable("initdb", scoped, extra);
    const pgCtl = findExecutable("pg_ctl", scoped, extra);
    if (initdb !== undefined && pgCtl !== undefined) return { initdb, pgCtl };
  }
  return undefined;
}

/**
 * A private PostgreSQL cluster in `dataDir` (initdb once, trust auth on 127.0.0.1 only), started
 * with pg_ctl on `port`. PostgreSQL refuses to run as root: callers check that first.
 */
export async function startNativePostgres(
  tools: { initdb: string; pgCtl: string },
  dataDir: string,
  preferredPort: number,
): Promise<EmbeddedPostgres> {
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await exec(tools.initdb, ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
  }
  const port = await portOr(preferredPort);
  const socketDir = join(dataDir, "sock");
  await mkdir(socketDir, { recursive: true });
  await writeFile(join(dataDir, "safedeploy.port"), String(port));
  const logFile = join(dataDir, "postgres.log");
  const child = spawn(
    tools.pgCtl,
    ["-D", dataDir, "-l", logFile, "-w", "-o", `-p ${port} -h 127.0.0.1 -k ${socketDir}`, "start"],
    { stdio: "ignore" },
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new StackError(`pg_ctl could not start PostgreSQL: see ${logFile}`);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntil(
    async () => {
      const { stdout } = await exec(tools.pgCtl, ["-D", dataDir, "status"]);
      return stdout.includes("server is running");
    },
    20_000,
    () => `PostgreSQL did not start: see ${logFile}`,
  );
  return {
    kind: "postgres",
    url,
    dataDir,
    description: `private PostgreSQL cluster on 127.0.0.1:${port} (data in ${dataDir})`,
    stop: async () => {
      await exec(tools.pgCtl, ["-D", dataDir, "-m", "fast", "-w", "stop"]).catch(() => undefined);
    },
  };
}
