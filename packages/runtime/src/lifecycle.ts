import { Registry, collectDefaultMetrics } from "prom-client";
import { loadConfig, redactConfig } from "./config.js";
import type { Config } from "./config.js";
import { startHealthServer } from "./health.js";
import type { HealthServer, ReadinessCheck } from "./health.js";
import { createLogger } from "./logger.js";
import type { Logger } from "./logger.js";

/** What a service gets to start with. */
export interface ServiceContext {
  readonly name: string;
  readonly config: Config;
  readonly log: Logger;
  /** This service's own metrics registry, served on /metrics. */
  readonly registry: Registry;
  /** Adds a readiness check (e.g. NATS, PostgreSQL) to /readyz. */
  addReadinessCheck(name: string, check: ReadinessCheck): void;
}

/** A started service: `stop` stops consuming and drains in-flight work. */
export interface RunningService {
  stop(): Promise<void>;
}

export interface ServiceDefinition {
  readonly name: string;
  start(context: ServiceContext): Promise<RunningService>;
}

export interface ServiceHandle {
  readonly health: HealthServer;
  readonly log: Logger;
  /** Stops in order: not ready → stop consuming → drain (bounded) → close health. */
  shutdown(reason: string): Promise<"clean" | "timed-out">;
}

/**
 * Starts a service with its config, logger, registry and health endpoint. Process-free: signals
 * and exit codes are {@link runService}'s business, so this runs in tests as it runs in production.
 */
export async function startService(
  definition: ServiceDefinition,
  options: {
    env: Readonly<Record<string, string | undefined>>;
    log?: Logger;
    drainTimeoutMs?: number;
  },
): Promise<ServiceHandle> {
  const config = loadConfig(options.env);
  const log = options.log ?? createLogger({ service: definition.name, level: config.logLevel });
  const registry = new Registry();
  registry.setDefaultLabels({ service: definition.name });
  collectDefaultMetrics({ register: registry });
  const readiness: Record<string, ReadinessCheck> = {};
  const health = await startHealthServer({
    host: config.health.host,
    port: config.health.port,
    registry,
    readiness,
  });
  log.info({ config: redactConfig(config), health: health.url }, "starting");
  let running: RunningService;
  try {
    running = await definition.start({
      name: definition.name,
      config,
      log,
      registry,
      addReadinessCheck: (name, check) => {
        readiness[name] = check;
      },
    });
  } catch (error) {
    await health.close();
    throw error;
  }
  log.info({}, "started");
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  return {
    health,
    log,
    shutdown: async (reason) => {
      log.info({ reason }, "shutting down");
      health.markShuttingDown();
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        running.stop().then(() => "clean" as const),
        new Promise<"timed-out">((resolve) => {
          timer = setTimeout(() => {
            resolve("timed-out");
          }, drainTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      await health.close();
      log.info({ outcome }, "stopped");
      return outcome;
    },
  };
}

/**
 * The process entry point of a service: SIGTERM or SIGINT → stop consuming → drain → exit 0; a
 * second signal, a drain past its deadline, a failed start or an uncaught error exit 1.
 */
export function runService(definition: ServiceDefinition): void {
  // pino writes asynchronously: flush before exiting, or the last lines come out of order or not at all.
  const exit = (log: Logger | undefined, code: number) => {
    if (log === undefined) process.exit(code);
    else
      log.flush(() => {
        process.exit(code);
      });
  };
  const fail = (log: Logger | undefined, error: unknown, what: string) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (log === undefined) process.stderr.write(`${definition.name}: ${what}: ${message}\n`);
    else log.fatal({ error: message }, what);
    exit(log, 1);
  };
  let handle: ServiceHandle | undefined;
  process.on("uncaughtException", (error) => {
    fail(handle?.log, error, "uncaught exception");
  });
  process.on("unhandledRejection", (error) => {
    fail(handle?.log, error, "unhandled rejection");
  });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (handle === undefined) process.exit(1);
    if (stopping) {
      handle.log.warn({ signal }, "second signal: exiting now");
      exit(handle.log, 1);
      return;
    }
    stopping = true;
    const log = handle.log;
    void handle.shutdown(signal).then((outcome) => {
      exit(log, outcome === "clean" ? 0 : 1);
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  startService(definition, { env: process.env }).then(
    (started) => {
      handle = started;
    },
    (error: unknown) => {
      fail(undefined, error, "failed to start");
    },
  );
}
