import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { redactCredentials } from "./secrets.js";

/**
 * A readiness check resolves when its dependency answers and rejects with why it does not. The
 * signal aborts when the check's deadline passes, so a check can cancel its request.
 */
export type ReadinessCheck = (signal: AbortSignal) => Promise<void>;

/**
 * Where the process is in its life: `starting` (alive, not ready yet), `running` (ready when every
 * check passes) or `shutting-down` (neither alive nor ready, so traffic and restarts stop).
 */
export type HealthPhase = "starting" | "running" | "shutting-down";

/** A running health endpoint. */
export interface HealthServer {
  /** Base URL, e.g. `http://127.0.0.1:43121`. */
  readonly url: string;
  readonly port: number;
  /** The service has started: `/readyz` now runs the checks. */
  markRunning(): void;
  /** From now on `/healthz` and `/readyz` answer 503: the process is going away. */
  markShuttingDown(): void;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** What {@link startHealthServer} serves. */
export interface HealthServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The service's own registry, served on `/metrics`. */
  readonly registry: Registry;
  /** Checks `/readyz` runs, by name. The record is read on every request, so checks may be added later. */
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** Deadline of each check, default 2 s. */
  readonly checkTimeoutMs?: number;
  /** Default `running`, for a server in front of something already started. */
  readonly phase?: HealthPhase;
}

/** Runs one check within its deadline: "ok", or why not (credentials masked). */
async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(controller.signal),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
          controller.abort();
        }, timeoutMs);
      }),
    ]);
    return "ok";
  } catch (error) {
    return redactCredentials(error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response
    .writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" })
    .end(JSON.stringify(body));
}

/**
 * Serves, on plain node:http so a service's health never depends on its business framework:
 * - `GET /healthz`: 200 while the process runs, 503 once shutdown started;
 * - `GET /readyz`: 200 `{status:"ready", checks:{name:"ok"}}` when every check passes within its
 *   deadline, else 503 with each failing check's error message (credentials masked); 503 while
 *   starting or shutting down;
 * - `GET /metrics`: the registry in Prometheus text format;
 * - anything else: 404 (405 for another method on these paths).
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  let phase: HealthPhase = options.phase ?? "running";

  const readiness = async (response: ServerResponse) => {
    if (phase !== "running") {
      sendJson(response, 503, { status: phase, checks: {} });
      return;
    }
    const entries = Object.entries(options.readiness);
    const results = await Promise.all(entries.map(([, check]) => runCheck(check, timeoutMs)));
    const checks = Object.fromEntries(entries.map(([name], index) => [name, results[index]]));
    const ready = results.every((result) => result === "ok");
    sendJson(response, ready ? 200 : 503, { status: ready ? "ready" : "not-ready", checks });
  };

  const metrics = async (response: ServerResponse) => {
    const text = await options.registry.metrics();
    response.writeHead(200, { "Content-Type": options.registry.contentType }).end(text);
  };

  const route = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://health").pathname;
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") {
      sendJson(response, 404, { error: "not_found", message: "no such route" });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      sendJson(response, 405, { error: "method_not_allowed", message: "use GET" });
      return;
    }
    if (path === "/healthz") {
      const alive = phase !== "shutting-down";
      sendJson(response, alive ? 200 : 503, { status: alive ? "ok" : phase });
    } else if (path === "/readyz") {
      await readiness(response);
    } else {
      await metrics(response);
    }
  };

  const server = createServer((request, response) => {
    route(request, response).catch(() => {
      if (!response.headersSent) sendJson(response, 500, { error: "internal" });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    markRunning: () => {
      if (phase === "starting") phase = "running";
    },
    markShuttingDown: () => {
      phase = "shutting-down";
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
