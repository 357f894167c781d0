import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** One supervised child process. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

export interface SupervisorOptions {
  /** Where every (prefixed) line goes. */
  readonly write: (line: string) => void;
  readonly color?: boolean;
  /** Restart delays, the last repeating; default 0.5 s doubling to 30 s. */
  readonly backoffMs?: readonly number[];
  /** A child that ran this long before crashing restarts after the first delay again. */
  readonly stableAfterMs?: number;
}

const COLORS = [36, 32, 33, 35, 34, 96, 92, 93, 95, 94];
const LEVELS: Readonly<Record<number, string>> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
const NOISE = new Set(["level", "time", "pid", "hostname", "msg", "service", "v", "name"]);

/** A pino JSON line as `level message key=value…`; any other line unchanged. */
export function formatLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    const level =
      typeof record.level === "number"
        ? (LEVELS[record.level] ?? "info")
        : typeof record.level === "string"
          ? record.level
          : "info";
    const msg = typeof record.msg === "string" ? record.msg : "";
    const extras = Object.entries(record)
      .filter(([key]) => !NOISE.has(key))
      .map(([key, value]) => {
        if (key === "err" && typeof value === "object" && value !== null) {
          const message = (value as { message?: unknown }).message;
          return `err=${JSON.stringify(typeof message === "string" ? message : value)}`;
        }
        const text = JSON.stringify(value);
        return `${key}=${text.length > 160 ? `${text.slice(0, 157)}...` : text}`;
      });
    return [level.padEnd(5), msg, ...extras].filter((part) => part !== "").join(" ");
  } catch {
    return line;
  }
}

interface Entry {
  readonly spec: ProcessSpec;
  child: ChildProcess | undefined;
  exited: Promise<void>;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Runs child processes, one per service: their output line by line, prefixed `[name]` (colored
 * when asked), pino JSON made readable; a child that exits while the supervisor is running is
 * restarted with backoff and its crash logged. `stop` sends SIGTERM to all and SIGKILL after the
 * grace period; `kill` sends SIGKILL at once (a second Ctrl-C).
 */
export class Supervisor {
  private readonly entries = new Map<string, Entry>();
  private readonly options: SupervisorOptions;
  private readonly width: number;
  private stopping = false;

  constructor(options: SupervisorOptions, width = 12) {
    this.options = options;
    this.width = width;
  }

  /** A prefix like `[policy]      `, colored when the supervisor is. */
  prefix(name: string): string {
    const label = `[${name}]`.padEnd(this.width + 2);
    if (this.options.color !== true) return label;
    let hash = 0;
    for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    return `\u001b[${COLORS[hash % COLORS.length] ?? 36}m${label}\u001b[0m`;
  }

  /** Writes `text` prefixed as `name`. */
  log(name: string, text: string): void {
    for (const line of text.split("\n")) this.options.write(`${this.prefix(name)} ${line}\n`);
  }

  /** How many times `name` was restarted after a crash. */
  restarts(name: string): number {
    return this.entries.get(name)?.restarts ?? 0;
  }

  /** The pids of the running children. */
  pids(): number[] {
    return [...this.entries.values()].flatMap((entry) =>
      entry.child?.pid !== undefined && entry.child.exitCode === null ? [entry.child.pid] : [],
    );
  }

  start(spec: ProcessSpec): void {
    const entry: Entry = {
      spec,
      child: undefined,
      exited: Promise.resolve(),
      restarts: 0,
      timer: undefined,
    };
    this.entries.set(spec.name, entry);
    this.launch(entry);
  }

  private launch(entry: Entry): void {
    const { spec } = entry;
    const startedAt = Date.now();
    const child = spawn(spec.command, [...spec.args], {
      env: { ...spec.env },
      cwd: spec.cwd,
      // Its own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
      // the services first and the servers after them.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    entry.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.log(spec.name, formatLogLine(line));
      });
    }
    entry.exited = new Promise<void>((resolve) => {
      child.once("error", (error) => {
        this.log(spec.name, `could not start: ${error.message}`);
      });
      child.once("close", (code, signal) => {
        resolve();
        if (this.stopping) return;
        const delays = this.options.backoffMs ?? [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
        const stable = Date.now() - startedAt > (this.options.stableAfterMs ?? 30_000);
        const attempt = stable ? 0 : entry.restarts;
        const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1_000;
        entry.restarts += 1;
        this.log(
          spec.name,
          `crashed (${signal ?? `exit code ${code ?? "?"}`}); restart #${entry.restarts} in ${delay} ms`,
        );
        entry.timer = setTimeout(() => {
          entry.timer = undefined;
          if (!this.stopping) this.launch(entry);
        }, delay);
      });
    });
  }

  /** SIGTERM to every child, SIGKILL after `graceMs`; resolves when all have exited. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    const entries = [...this.entries.values()];
    for (const entry of entries) clearTimeout(entry.timer);
    await Promise.all(
      entries.map(async (entry) => {
        const child = entry.child;
        if (child?.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          this.log(entry.spec.name, `did not stop within ${graceMs} ms: killing it`);
          child.kill("SIGKILL");
        }, graceMs);
        await entry.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** SIGKILL to every child now. */
  kill(): void {
    this.stopping = true;
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timer);
      entry.child?.kill("SIGKILL");
    }
  }
}
