import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { serverEnvironment } from "./environment.js";
import { findExecutable, listening, portOr, StackError, waitUntil } from "./tools.js";

type Env = Readonly<Record<string, string | undefined>>;

/** A server process the stack started (nats-server, prometheus). */
export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

function run(binary: string, args: readonly string[], logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: "a" });
  // The process basics only: a server has no business with the operator's credentials.
  const child = spawn(binary, [...args], {
    detached: true,
    env: serverEnvironment(process.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return child;
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, "utf8")).split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function stopper(child: ChildProcess, graceMs = 10_000): () => Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once("exit", () => {
      resolve();
    });
  });
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
}

/**
 * nats-server with JetStream, its store in `dir` (kept across runs), on 127.0.0.1:4222 when free,
 * else a free port. No binary: a StackError naming how to install one.
 */
export async function startNats(dir: string, env: Env): Promise<ServerProcess> {
  const binary = env.NATS_SERVER_BIN ?? findExecutable("nats-server", env);
  if (binary === undefined) {
    throw new StackError(
      "nats-server is not installed (looked on PATH and in /usr/sbin), and NATS_URL is not set.\n" +
        "Install it with `sudo apt-get install nats-server` (or run `docker compose up` and set NATS_URL),\n" +
        "or run ./safedeploy, which installs it for you.",
    );
  }
  await mkdir(dir, { recursive: true });
  const port = await portOr(4222);
  const logFile = join(dir, "nats-server.log");
  const child = run(
    binary,
    ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", join(dir, "store"), "-n", "safedeploy"],
    logFile,
  );
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error("exited");
      return listening(port);
    },
    15_000,
    () => `nats-server did not start on port ${port}; its log (${logFile}) ends:\n`,
  ).catch(async (error: unknown) => {
    child.kill("SIGKILL");
    throw new StackError(`${(error as Error).message}${await tail(logFile)}`, 1);
  });
  return { url: `nats://127.0.0.1:${port}`, port, logFile, stop: stopper(child) };
}

/**
 * Prometheus scraping `targets` every second, config and TSDB in `dir`, on 127.0.0.1:9090 when
 * free, else a free port. No binary: a StackError naming how to install one.
 */
export async function startPrometheus(
  dir: string,
  targets: readonly string[],
  env: Env,
): Promise<ServerProcess> {
  const binary = env.PROMETHEUS_BIN ?? findExecutable("prometheus", env, ["/usr/bin"]);
  if (binary === undefined) {
    throw new StackError(
      "prometheus is not installed (looked on PATH, /usr/sbin and /usr/bin).\n" +
        "Install it with `sudo apt-get install prometheus` (or run `docker compose up`),\n" +
        "or run ./safedeploy demo, which installs it for you.",
    );
  }
  await mkdir(dir, { recursive: true });
  const port = await portOr(9090);
  const config = join(dir, "prometheus.yml");
  await writeFile(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: demo",
      "    scrape_interval: 1s",
      "    static_configs:",
      `      - targets: [${targets.map((target) => JSON.stringify(target)).join(", ")}]`,
      "",
    ].join("\n"),
  );
  const logFile = join(dir, "prometheus.log");
  const url = `http://127.0.0.1:${port}`;
  const child = run(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "prometheus-data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1d",
    ],
    logFile,
  );
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error("exited");
      return (await fetch(`${url}/-/ready`)).ok;
    },
    30_000,
    () => `prometheus did not become ready on port ${port}; its log (${logFile}) ends:\n`,
  ).catch(async (error: unknown) => {
    child.kill("SIGKILL");
    throw new StackError(`${(error as Error).message}${await tail(logFile)}`, 1);
  });
  return { url, port, logFile, stop: stopper(child) };
}
