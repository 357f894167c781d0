import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A readiness check resolves when the dependency answers and rejects with why it does not. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthServer {
  readonly url: string;
  readonly port: number;
  /** From now on `/healthz` and `/readyz` answer 503: the process is going away. */
  markShuttingDown(): void;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** Per-check deadline. */
  readonly checkTimeoutMs?: number;
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    return "ok";
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Serves `/healthz` (the process runs), `/readyz` (every dependency answers) and `/metrics`
 * (Prometheus text format) on plain node:http, so a service's health never depends on its
 * business framework.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  let shuttingDown = false;
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
    switch (path) {
      case "/healthz":
        json(shuttingDown ? 503 : 200, { status: shuttingDown ? "shutting-down" : "ok" });
        return;
      case "/readyz":
        void (async () => {
          if (shuttingDown) {
            json(503, { status: "shutting-down", checks: {} });
            return;
          }
          const names = Object.keys(options.readiness);
          const results = await Promise.all(
            names.map((name) =>
              runCheck(options.readiness[name] ?? (() => Promise.resolve()), timeoutMs),
            ),
          );
          const checks = Object.fromEntries(names.map((name, index) => [name, results[index]]));
          const ready = results.every((result) => result === "ok");
          json(ready ? 200 : 503, { status: ready ? "ready" : "not-ready", checks });
        })();
        return;
      case "/metrics":
        void options.registry.metrics().then(
          (text) => {
            response.writeHead(200, { "Content-Type": options.registry.contentType }).end(text);
          },
          () => {
            response.writeHead(500).end();
          },
        );
        return;
      default:
        json(404, { error: "not_found", message: `no route ${path ?? ""}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    port,
    markShuttingDown: () => {
      shuttingDown = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
