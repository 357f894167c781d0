import { spawn } from "node:child_process";
import type { ChildProcess, ChildProcessByStdio } from "node:child_process";
import { accessSync, constants, createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";

/** A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Finds an executable on PATH or in the sbin folders Debian installs servers into. */
export function findExecutable(
  name: string,
  extraDirs: readonly string[] = [],
): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/local/sbin",
    "/sbin",
    ...extraDirs,
  ];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A child process whose output goes to a log file, so a failure can show what it said. */
export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  /** The child's whole environment; default this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Spawns `command` (argv only, no shell) with its standard output and error appended to `logFile`. */
export function startProcess(
  command: string,
  args: readonly string[],
  logFile: string,
  options: StartProcessOptions = {},
): ManagedProcess {
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(command, [...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
  return {
    child,
    logFile,
    logTail: (lines = 20) => {
      try {
        return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
    stop: async (graceMs = 5_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it resolves true, or fails after `timeoutMs` with `describe()`. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A child process whose stdout and stderr are collected together as text. */
export interface CollectedProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Everything it printed so far, stdout and stderr interleaved. */
  readonly output: () => string;
  /** Its exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

/** Spawns `command` with `env`, collecting what it prints (for CLI tests that read its output). */
export function spawnCollecting(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): CollectedProcess {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, output: () => output, exited };
}
