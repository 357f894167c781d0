import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { migrateAudit } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { findPostgresTools, startNativePostgres, startPglite } from "./postgres.js";
import type { EmbeddedPostgres } from "./postgres.js";
import { provisionFromEnv } from "../commands/provision.js";
import { serverEnvironment, serviceEnvironment } from "./environment.js";
import { startNats } from "./servers.js";
import type { ServerProcess } from "./servers.js";
import { Supervisor } from "./supervisor.js";
import { portOr, sleep, StackError } from "./tools.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The services of the control plane, in start order. */
export const SERVICES = [
  "audit",
  "collector",
  "budget",
  "incident",
  "policy",
  "proposal",
  "git-actuator",
  "release-train",
  "notifier",
  "gateway",
] as const;

/** The repository this CLI runs from (packages/cli/{src,dist}/stack → the root). */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

export interface StackOptions {
  readonly env: Env;
  readonly cwd: string;
  /** Progress lines of the stack itself (prefixed `[up]`). */
  readonly say: (text: string) => void;
  /** Service log lines, already prefixed. */
  readonly write: (line: string) => void;
  readonly color: boolean;
  /** Services to run; default all. */
  readonly services?: readonly string[];
  /** How long to wait for every service's /readyz; default 120 s. */
  readonly readyTimeoutMs?: number;
}

export interface Stack {
  /**
   * The configuration the services share (the invocation's environment with the stack's
   * servers). Each service gets only its allowlisted part of it (`serviceEnvironment`).
   */
  readonly env: Readonly<Record<string, string>>;
  readonly home: string;
  readonly gatewayUrl: string;
  readonly supervisor: Supervisor;
  /** Services that did not become ready in time (empty when all did). */
  readonly notReady: readonly string[];
  /** Stops the services, then the servers this stack started. */
  stop(): Promise<void>;
  /** Kills everything now (second Ctrl-C). */
  kill(): void;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Services whose dist is missing or older than their sources. */
export function staleServices(root: string, names: readonly string[]): string[] {
  return names.filter((name) => {
    const info = join(root, "services", name, "dist", ".tsbuildinfo");
    const main = join(root, "services", name, "dist", "main.js");
    if (!existsSync(main) || !existsSync(info)) return true;
    return newestMtime(join(root, "services", name, "src")) > statSync(info).mtimeMs;
  });
}

async function build(root: string, names: readonly string[], say: (text: string) => void) {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) {
    throw new StackError(`cannot build the services: ${tsc} is missing; run pnpm install first`);
  }
  say(`building ${names.join(", ")} (tsc -b): their dist is missing or older than the source`);
  const child = spawn(
    process.execPath,
    [tsc, "-b", ...names.map((name) => join(root, "services", name))],
    { cwd: root, env: serverEnvironment(process.env), stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.once("close", done));
  if (code !== 0) {
    const missing = names.filter(
      (name) => !existsSync(join(root, "services", name, "dist", "main.js")),
    );
    say(`tsc -b failed:\n${output.trim().split("\n").slice(0, 20).join("\n")}`);
    if (missing.length > 0) throw new StackError(`cannot run ${missing.join(", ")}: not built`, 1);
    say("going on with the services' previous build");
  }
}

async function startDatabase(home: string, env: Env, say: (text: string) => void) {
  const dataDir = join(home, "pg");
  const tools = findPostgresTools(env);
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (tools !== undefined && !root) {
    say(`DATABASE_URL is unset: starting a private PostgreSQL cluster (${tools.initdb})`);
    return startNativePostgres(tools, join(dataDir, "cluster"), 5432);
  }
  say(
    tools === undefined
      ? "DATABASE_URL is unset and initdb/pg_ctl are not installed: starting an embedded PGlite"
      : "DATABASE_URL is unset; PostgreSQL refuses to run as root, so starting an embedded PGlite instead",
  );
  return startPglite(join(dataDir, "pglite"));
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Starts the control plane on this machine: NATS and PostgreSQL when not configured, the audit
 * migrations once (so services never race them), then one supervised child per service, and waits
 * for every service's /readyz.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const { env, say } = options;
  const set = (name: string) => (env[name] ?? "") !== "";
  const home = resolve(options.cwd, env.SAFEDEPLOY_HOME ?? ".safedeploy");
  const catalog = resolve(
    options.cwd,
    set("SAFEDEPLOY_CATALOG") ? (env.SAFEDEPLOY_CATALOG ?? "") : "./catalog",
  );
  if (!existsSync(catalog)) {
    throw new StackError(
      `no catalog at ${catalog}: set SAFEDEPLOY_CATALOG to a catalog file or directory, or create ./catalog\n` +
        '(CONTRACT.md, "Catalog"; check it with `safedeploy validate`). `safedeploy demo` brings its own.',
    );
  }
  let names: string[] = [...(options.services ?? SERVICES)];
  if (!set("SAFEDEPLOY_ENV_REPO") && names.includes("git-actuator")) {
    say("SAFEDEPLOY_ENV_REPO is unset: not starting the git actuator (no rollback branches)");
    names = names.filter((name) => name !== "git-actuator");
  }
  const unwritten = names.filter(
    (name) => !existsSync(join(REPO_ROOT, "services", name, "src", "main.ts")),
  );
  if (unwritten.length > 0) {
    say(`not starting ${unwritten.join(", ")}: no services/<name>/src/main.ts in this checkout`);
    names = names.filter((name) => !unwritten.includes(name));
  }
  const stale = staleServices(REPO_ROOT, names);
  if (stale.length > 0) await build(REPO_ROOT, stale, say);

  await mkdir(home, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const stopServers = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    let natsUrl = env.NATS_URL ?? "";
    if (natsUrl === "") {
      const nats: ServerProcess = await startNats(join(home, "nats"), env);
      cleanups.push(() => nats.stop());
      natsUrl = nats.url;
      say(
        `NATS_URL is unset: nats-server with JetStream on ${nats.url} (store in ${join(home, "nats")})`,
      );
    }
    let databaseUrl = env.DATABASE_URL ?? "";
    if (databaseUrl === "") {
      const pg: EmbeddedPostgres = await startDatabase(home, env, say);
      cleanups.push(() => pg.stop());
      databaseUrl = pg.url;
      say(`PostgreSQL: ${pg.description}`);
    }
    const pool = createPool({
      connectionString: databaseUrl,
      applicationName: "safedeploy-up",
      max: 1,
    });
    try {
      const report = await migrateAudit(pool);
      if (report.applied.length > 0) say(`applied ${report.applied.length} audit migration(s)`);
    } finally {
      await pool.end();
    }

    const gatewayPort =
      set("GATEWAY_PORT") && env.GATEWAY_PORT !== "0"
        ? Number(env.GATEWAY_PORT)
        : await portOr(8080);
    const gatewayHost = set("GATEWAY_HOST") ? (env.GATEWAY_HOST ?? "127.0.0.1") : "127.0.0.1";
    const shared: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (value !== undefined) shared[key] = value;
    Object.assign(shared, {
      NATS_URL: natsUrl,
      DATABASE_URL: databaseUrl,
      SAFEDEPLOY_CATALOG: catalog,
      SAFEDEPLOY_HOME: home,
      GATEWAY_HOST: gatewayHost,
      GATEWAY_PORT: String(gatewayPort),
    });
    if (!set("PROMETHEUS_URL")) shared.PROMETHEUS_URL = "http://127.0.0.1:9090";
    const prometheusUp = await healthy(`${shared.PROMETHEUS_URL ?? ""}/-/ready`);
    if (!prometheusUp && names.includes("collector")) {
      say(
        `Prometheus at ${shared.PROMETHEUS_URL ?? ""} does not answer: the collector waits for it ` +
          "(set PROMETHEUS_URL; `safedeploy demo` starts one)",
      );
    }
    // The topology exists before any service binds to it, created by the provisioning identity
    // (its password, if the server has users, in SAFEDEPLOY_NATS_PROVISIONER_PASSWORD).
    const provisioned = await provisionFromEnv(shared).catch((error: unknown) => {
      throw new StackError(`cannot provision NATS at ${natsUrl}: ${(error as Error).message}`, 1);
    });
    if (provisioned.created.length > 0 || provisioned.updated.length > 0) {
      say(
        `provisioned NATS: ${provisioned.created.length} created, ${provisioned.updated.length} updated`,
      );
    }
    const supervisor = new Supervisor({ write: options.write, color: options.color });
    const health = new Map<string, number>();
    for (const name of names) {
      const port = await portOr(0);
      health.set(name, port);
      supervisor.start({
        name,
        command: process.execPath,
        args: [join(REPO_ROOT, "services", name, "dist", "main.js")],
        // Allowlisted per service: Git credentials reach the git actuator alone.
        env: serviceEnvironment(name, {
          ...shared,
          HEALTH_HOST: "127.0.0.1",
          HEALTH_PORT: String(port),
        }),
        cwd: options.cwd,
      });
    }
    const stop = async () => {
      await supervisor.stop();
      await stopServers();
    };
    const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
    // Without Prometheus the collector is never ready: do not hold the banner for it.
    const waiting = new Set(names.filter((name) => prometheusUp || name !== "collector"));
    while (waiting.size > 0 && Date.now() < deadline) {
      for (const name of [...waiting]) {
        if (await healthy(`http://127.0.0.1:${health.get(name) ?? 0}/readyz`)) waiting.delete(name);
      }
      if (waiting.size > 0) await sleep(250);
    }
    const shown = gatewayHost === "0.0.0.0" ? "127.0.0.1" : gatewayHost;
    return {
      env: shared,
      home,
      gatewayUrl: `http://${shown}:${gatewayPort}`,
      supervisor,
      notReady: [...waiting],
      stop,
      kill: () => {
        supervisor.kill();
        void stopServers();
      },
    };
  } catch (error) {
    await stopServers();
    throw error;
  }
}
