import type { DestinationStream } from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { loadConfig, redactConfig } from "./config.js";
import type { Config } from "./config.js";
import { startHealthServer } from "./health.js";
import type { HealthServer, ReadinessCheck } from "./health.js";
import { createLogger } from "./logger.js";
import type { Logger } from "./logger.js";

type Env = Readonly<Record<string, string | undefined>>;

/** What a service gets to start with. */
export interface ServiceContext {
  readonly name: string;
  readonly config: Config;
  /** The process's logger; take a child per component. */
  readonly log: Logger;
  /** This service's own metrics registry (default process metrics included), served on /metrics. */
  readonly registry: Registry;
  /** Adds a readiness check (e.g. NATS, PostgreSQL) to /readyz. */
  addReadinessCheck(name: string, check: ReadinessCheck): void;
}

/** A started service: `stop` stops consuming and resolves once in-flight work has drained. */
export interface RunningService {
  stop(): Promise<void>;
}

/** A service: its name (the `service` of every log line and metric) and how it starts. */
export interface ServiceDefinition {
  readonly name: string;
  start(context: ServiceContext): Promise<RunningService>;
}

/** How a shutdown ended: drained, stopped by its deadline, or the service's stop failed. */
export type ShutdownOutcome = "clean" | "timed-out" | "failed";

/** A service started by {@link startService}. */
export interface ServiceHandle {
  readonly health: HealthServer;
  readonly log: Logger;
  readonly registry: Registry;
  /**
   * Stops in order: not ready → stop consuming and drain (bounded by the drain deadline) → close
   * the health endpoint. Calling it again returns the same outcome.
   */
  shutdown(reason: string): Promise<ShutdownOutcome>;
}

/** Options of {@link startService}. */
export interface StartOptions {
  readonly env: Env;
  /** Default: a logger at the configured level on standard output. */
  readonly log?: Logger;
  /** How long the service's stop may take, default 10 s. */
  readonly drainTimeoutMs?: number;
}

/**
 * A metrics registry for one service: its metrics carry `service="<name>"` and include the default
 * process metrics. Per service, not prom-client's global one, so that several services in one
 * process (`safedeploy up`, tests) do not collide.
 */
export function createServiceRegistry(name: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: name });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Starts a service with its config, logger, registry and health endpoint. It touches nothing
 * process-wide (signals, exit codes: {@link runService}), so tests run it as production does.
 * `/readyz` answers 503 until `start` has resolved. A config error or a failed start rejects,
 * with the health endpoint closed.
 */
export async function startService(
  definition: ServiceDefinition,
  options: StartOptions,
): Promise<ServiceHandle> {
  const config = loadConfig(options.env);
  const log = options.log ?? createLogger({ service: definition.name, level: config.logLevel });
  const registry = createServiceRegistry(definition.name);
  const readiness: Record<string, ReadinessCheck> = {};
  const health = await startHealthServer({
    host: config.health.host,
    port: config.health.port,
    registry,
    readiness,
    phase: "starting",
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
  health.markRunning();
  log.info({}, "started");

  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const drain = async (): Promise<ShutdownOutcome> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        // A stop that throws synchronously fails the same way as one that rejects.
        Promise.resolve()
          .then(() => running.stop())
          .then(() => "clean" as const),
        new Promise<"timed-out">((resolve) => {
          timer = setTimeout(() => {
            resolve("timed-out");
          }, drainTimeoutMs);
        }),
      ]);
    } catch (error) {
      log.error({ err: error }, "stop failed");
      return "failed";
    } finally {
      clearTimeout(timer);
    }
  };
  let stopping: Promise<ShutdownOutcome> | undefined;
  return {
    health,
    log,
    registry,
    shutdown: (reason) => {
      stopping ??= (async () => {
        log.info({ reason }, "shutting down");
        health.markShuttingDown();
        const outcome = await drain();
        if (outcome === "timed-out") log.error({ drainTimeoutMs }, "drain overran its deadline");
        await health.close();
        log.info({ outcome }, "stopped");
        return outcome;
      })();
      return stopping;
    },
  };
}

/**
 * The process-wide effects {@link superviseService} needs. {@link runService} passes the real
 * process; tests pass fakes and drive signals and errors themselves.
 */
export interface ServiceHost {
  readonly env: Env;
  /** Registers `handler` for SIGTERM and SIGINT. */
  onSignal(handler: (signal: NodeJS.Signals) => void): void;
  /** Registers `handler` for uncaught exceptions and unhandled rejections. */
  onFatal(handler: (error: unknown, origin: string) => void): void;
  /** Ends the process. Called at most once, after the log is flushed. */
  exit(code: number): void;
  /** Where log lines go; default standard output. */
  readonly destination?: DestinationStream;
}

/** Options of {@link superviseService} and {@link runService}. */
export interface SuperviseOptions {
  /** How long the service's stop (and, after an early signal, its start) may take; default 10 s. */
  readonly drainTimeoutMs?: number;
}

/**
 * Runs a service for its whole life on `host`: starts it ({@link startService}); on the first
 * signal shuts it down in order and exits 0 once drained; exits 1 on a second signal, a drain past
 * its deadline, a failed stop, a config error, a failed start, or an uncaught exception or
 * unhandled rejection (each logged first). A signal that arrives while the service starts is
 * honoured once the start completes. The returned promise settles once the service has started
 * or failed to; it never rejects.
 */
export async function superviseService(
  definition: ServiceDefinition,
  host: ServiceHost,
  options: SuperviseOptions = {},
): Promise<void> {
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const loggerFor = (level: Config["logLevel"]) =>
    createLogger({
      service: definition.name,
      level,
      ...(host.destination === undefined ? {} : { destination: host.destination }),
    });
  // Until the config is read, failures are logged at info level, so they are never silent.
  let log = loggerFor("info");
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    log.flush(() => {
      host.exit(code);
    });
  };

  let handle: ServiceHandle | undefined;
  let signalled: NodeJS.Signals | undefined;
  let startDeadline: NodeJS.Timeout | undefined;
  const shutDown = (started: ServiceHandle, signal: NodeJS.Signals) => {
    started.shutdown(signal).then(
      (outcome) => {
        exit(outcome === "clean" ? 0 : 1);
      },
      (error: unknown) => {
        log.fatal({ err: error }, "shutdown failed");
        exit(1);
      },
    );
  };

  host.onFatal((error, origin) => {
    log.fatal({ err: error, origin }, "fatal error, exiting");
    exit(1);
  });
  host.onSignal((signal) => {
    if (signalled !== undefined) {
      log.warn({ signal }, "second signal, exiting now");
      exit(1);
      return;
    }
    signalled = signal;
    if (handle !== undefined) {
      shutDown(handle, signal);
      return;
    }
    log.info({ signal }, "signal while starting, stopping once started");
    startDeadline = setTimeout(() => {
      log.error({ drainTimeoutMs }, "start did not finish before the deadline");
      exit(1);
    }, drainTimeoutMs);
  });

  try {
    log = loggerFor(loadConfig(host.env).logLevel);
    handle = await startService(definition, { env: host.env, log, drainTimeoutMs });
  } catch (error) {
    clearTimeout(startDeadline);
    log.fatal({ err: error }, "failed to start");
    exit(1);
    return;
  }
  clearTimeout(startDeadline);
  if (signalled !== undefined) shutDown(handle, signalled);
}

/**
 * The entry point of a service's `main.ts`: {@link superviseService} on the real process. The only
 * place that touches signals, process-wide error handlers and `process.exit`.
 */
export function runService(definition: ServiceDefinition, options: SuperviseOptions = {}): void {
  void superviseService(
    definition,
    {
      env: process.env,
      onSignal: (handler) => {
        process.on("SIGTERM", handler);
        process.on("SIGINT", handler);
      },
      onFatal: (handler) => {
        process.on("uncaughtException", (error) => {
          handler(error, "uncaught exception");
        });
        process.on("unhandledRejection", (reason) => {
          handler(reason, "unhandled rejection");
        });
      },
      exit: (code) => process.exit(code),
    },
    options,
  );
}
