import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, createLogger, startService, superviseService } from "@safedeploy/runtime";
import type {
  RunningService,
  ServiceDefinition,
  ServiceHandle,
  ServiceHost,
} from "@safedeploy/runtime";
import { captureLog } from "./fixtures/log-capture.js";
import type { LogLine } from "./fixtures/log-capture.js";

const handles: ServiceHandle[] = [];
const releases: (() => void)[] = [];
afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await Promise.all(handles.splice(0).map((handle) => handle.shutdown("test over")));
});

/** A promise and the function that settles it, to hold a start or a stop where a test wants. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** A service that records what happens to it in `events`. */
function recordingService(
  events: string[],
  behaviour: { start?: () => Promise<void>; stop?: () => Promise<void> } = {},
): ServiceDefinition {
  return {
    name: "recorder",
    async start(context) {
      context.addReadinessCheck("dep", () => Promise.resolve());
      events.push("start");
      await behaviour.start?.();
      events.push("started");
      return {
        async stop() {
          events.push("stop");
          await behaviour.stop?.();
          events.push("drained");
        },
      } satisfies RunningService;
    },
  };
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

describe("startService", () => {
  it("gives each service its own registry with process metrics and its label", async () => {
    const silent = { env: { LOG_LEVEL: "silent" } };
    const a = await startService({ ...recordingService([]), name: "alpha" }, silent);
    const b = await startService({ ...recordingService([]), name: "beta" }, silent);
    handles.push(a, b);
    const metrics = await (await fetch(`${a.health.url}/metrics`)).text();
    expect(metrics).toContain('process_cpu_user_seconds_total{service="alpha"}');
    expect(metrics).not.toContain('service="beta"');
    expect(await (await fetch(`${b.health.url}/metrics`)).text()).toContain('service="beta"');
  });

  it("is not ready until its start resolves", async () => {
    const starting = deferred();
    const { lines, destination } = captureLog();
    const log = createLogger({ service: "recorder", destination });
    const started = startService(recordingService([], { start: () => starting.promise }), {
      env: {},
      log,
    });
    await expect.poll(() => lines.find((line) => line.msg === "starting")).toBeDefined();
    const url = String(lines.find((line) => line.msg === "starting")?.health);
    expect(await status(`${url}/healthz`)).toBe(200);
    expect(await status(`${url}/readyz`)).toBe(503);
    starting.resolve();
    handles.push(await started);
    expect(await status(`${url}/readyz`)).toBe(200);
  });

  it("stops in order: not ready, stop and drain, then close the endpoint", async () => {
    const events: string[] = [];
    const draining = deferred();
    releases.push(draining.resolve);
    const handle = await startService(recordingService(events, { stop: () => draining.promise }), {
      env: { LOG_LEVEL: "silent" },
    });
    const stopped = handle.shutdown("test");
    await expect.poll(() => events).toEqual(["start", "started", "stop"]);
    expect(await status(`${handle.health.url}/healthz`)).toBe(503);
    expect(await status(`${handle.health.url}/readyz`)).toBe(503);
    draining.resolve();
    expect(await stopped).toBe("clean");
    expect(events).toEqual(["start", "started", "stop", "drained"]);
    await expect(fetch(`${handle.health.url}/healthz`)).rejects.toThrow();
    expect(await handle.shutdown("again")).toBe("clean");
    expect(events.filter((event) => event === "stop")).toHaveLength(1);
  });

  it("reports a drain past its deadline and a stop that fails", async () => {
    const slow = await startService(
      recordingService([], { stop: () => new Promise<void>(() => undefined) }),
      { env: { LOG_LEVEL: "silent" }, drainTimeoutMs: 50 },
    );
    expect(await slow.shutdown("test")).toBe("timed-out");
    const broken = await startService(
      recordingService([], { stop: () => Promise.reject(new Error("nats gone")) }),
      { env: { LOG_LEVEL: "silent" } },
    );
    expect(await broken.shutdown("test")).toBe("failed");
  });

  it("closes its endpoint when the start fails, and refuses a bad config", async () => {
    const { lines, destination } = captureLog();
    const log = createLogger({ service: "recorder", destination });
    const failing = recordingService([], { start: () => Promise.reject(new Error("no catalog")) });
    await expect(startService(failing, { env: {}, log })).rejects.toThrow("no catalog");
    const url = String(lines.find((line) => line.msg === "starting")?.health);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    await expect(startService(failing, { env: { HEALTH_PORT: "x" } })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });
});

/** A host whose signals and fatal errors the test sends, recording exits and log lines. */
function fakeHost(env: ServiceHost["env"] = {}) {
  const { lines, text, destination } = captureLog();
  const exits: number[] = [];
  const exited = deferred<number>();
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  let onFatal: ((error: unknown, origin: string) => void) | undefined;
  const host: ServiceHost = {
    env,
    destination,
    onSignal: (handler) => {
      onSignal = handler;
    },
    onFatal: (handler) => {
      onFatal = handler;
    },
    exit: (code) => {
      exits.push(code);
      exited.resolve(code);
    },
  };
  return {
    host,
    lines,
    text,
    exits,
    exited: exited.promise,
    signal: (signal: NodeJS.Signals) => onSignal?.(signal),
    fatal: (error: unknown) => onFatal?.(error, "uncaught exception"),
    messages: () => lines.map((line) => line.msg),
  };
}

describe("superviseService", () => {
  it("exits 0 once the service drained after SIGTERM", async () => {
    const events: string[] = [];
    const process = fakeHost();
    await superviseService(recordingService(events), process.host);
    process.signal("SIGTERM");
    expect(await process.exited).toBe(0);
    expect(events).toEqual(["start", "started", "stop", "drained"]);
    expect(process.messages()).toEqual(["starting", "started", "shutting down", "stopped"]);
    expect(process.exits).toEqual([0]);
  });

  it("exits 1 at once on a second signal", async () => {
    const draining = deferred();
    releases.push(draining.resolve);
    const process = fakeHost();
    await superviseService(recordingService([], { stop: () => draining.promise }), process.host);
    process.signal("SIGTERM");
    process.signal("SIGINT");
    expect(await process.exited).toBe(1);
    expect(process.lines.at(-1)).toMatchObject({ level: "warn", signal: "SIGINT" });
    draining.resolve();
    await expect.poll(() => process.messages()).toContain("stopped");
    expect(process.exits).toEqual([1]);
  });

  it("exits 1 when the drain overruns its deadline or the stop fails", async () => {
    const slow = fakeHost();
    await superviseService(
      recordingService([], { stop: () => new Promise<void>(() => undefined) }),
      slow.host,
      { drainTimeoutMs: 50 },
    );
    slow.signal("SIGTERM");
    expect(await slow.exited).toBe(1);
    expect(slow.messages()).toContain("drain overran its deadline");

    const broken = fakeHost();
    await superviseService(
      recordingService([], { stop: () => Promise.reject(new Error("flush failed")) }),
      broken.host,
    );
    broken.signal("SIGTERM");
    expect(await broken.exited).toBe(1);
    expect(broken.lines.find((line) => line.msg === "stop failed")).toMatchObject({
      level: "error",
      err: { message: "flush failed" },
    });
  });

  it("exits 1 on a bad config, naming every variable and no secret", async () => {
    const process = fakeHost({
      GATEWAY_PORT: "http",
      LOG_LEVEL: "loud",
      DATABASE_URL: "mysql://app:hunter2@db/sd",
    });
    const events: string[] = [];
    await superviseService(recordingService(events), process.host);
    expect(await process.exited).toBe(1);
    expect(events).toEqual([]);
    const fatal = process.lines.find((line) => line.msg === "failed to start");
    expect(fatal).toMatchObject({
      level: "fatal",
      service: "recorder",
      err: { type: "ConfigError" },
    });
    const message = String((fatal?.err as { message?: string }).message);
    for (const variable of ["GATEWAY_PORT", "LOG_LEVEL", "DATABASE_URL"]) {
      expect(message).toContain(variable);
    }
    expect(process.text()).not.toContain("hunter2");
  });

  it("exits 1 when the start fails, and on an uncaught error", async () => {
    const failing = fakeHost();
    await superviseService(
      recordingService([], { start: () => Promise.reject(new Error("catalog invalid")) }),
      failing.host,
    );
    expect(await failing.exited).toBe(1);
    expect(failing.lines.at(-1)).toMatchObject({
      level: "fatal",
      msg: "failed to start",
      err: { message: "catalog invalid" },
    });

    const crashing = fakeHost();
    await superviseService(recordingService([]), crashing.host);
    crashing.fatal(new TypeError("undefined is not a function"));
    expect(await crashing.exited).toBe(1);
    expect(crashing.lines.at(-1)).toMatchObject({
      level: "fatal",
      origin: "uncaught exception",
      err: { type: "TypeError", message: "undefined is not a function" },
    });
  });

  it("honours a signal that arrives while the service starts", async () => {
    const starting = deferred();
    const events: string[] = [];
    const process = fakeHost();
    const supervised = superviseService(
      recordingService(events, { start: () => starting.promise }),
      process.host,
    );
    await expect.poll(() => events).toContain("start");
    process.signal("SIGTERM");
    starting.resolve();
    await supervised;
    expect(await process.exited).toBe(0);
    expect(events).toEqual(["start", "started", "stop", "drained"]);
  });

  it("exits 1 when a start interrupted by a signal outlasts the deadline", async () => {
    const starting = deferred();
    releases.push(starting.resolve);
    const process = fakeHost();
    void superviseService(recordingService([], { start: () => starting.promise }), process.host, {
      drainTimeoutMs: 50,
    });
    await expect.poll(() => process.messages()).toContain("starting");
    process.signal("SIGTERM");
    expect(await process.exited).toBe(1);
    expect(process.messages()).toContain("start did not finish before the deadline");
  });
});

describe("runService in a real process", () => {
  const fixture = fileURLToPath(new URL("fixtures/service.ts", import.meta.url));
  const hooks = new URL("fixtures/source-hooks.mjs", import.meta.url).href;

  /** Runs the fixture service from source, collecting its JSON log lines. */
  function runFixture(env: Record<string, string>) {
    const child = spawn(process.execPath, ["--conditions=source", "--import", hooks, fixture], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: LogLine[] = [];
    let buffer = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, newline)) as LogLine);
        buffer = buffer.slice(newline + 1);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // "close", not "exit": stdout may still hold the last lines when the process exits.
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    return { child, lines, exited, stderr: () => stderr };
  }

  it("reports ready, then exits 0 on SIGTERM after the service drained", async () => {
    const service = runFixture({ FIXTURE_STOP_MS: "200" });
    await expect
      .poll(() => service.lines.some((line) => line.msg === "started"), { timeout: 15_000 })
      .toBe(true);
    const health = String(service.lines.find((line) => line.msg === "starting")?.health);
    expect(await status(`${health}/readyz`)).toBe(200);
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(0);
    expect(service.stderr()).toBe("");
    const messages = service.lines.map((line) => line.msg);
    expect(messages.slice(messages.indexOf("started"))).toEqual([
      "started",
      "shutting down",
      "fixture stop begins",
      "fixture drained",
      "stopped",
    ]);
  });

  it("exits 1 with one JSON line naming the bad variables", async () => {
    const service = runFixture({ HEALTH_PORT: "nope", NATS_URL: "nats://u:hunter2@x, bogus" });
    expect(await service.exited).toBe(1);
    expect(service.lines).toHaveLength(1);
    expect(service.lines[0]).toMatchObject({ level: "fatal", msg: "failed to start" });
    const message = String((service.lines[0]?.err as { message?: string }).message);
    expect(message).toContain("HEALTH_PORT: must be a port number");
    expect(message).toContain("NATS_URL: entry 2 must be a URL");
    expect(JSON.stringify(service.lines)).not.toContain("hunter2");
  });
});
