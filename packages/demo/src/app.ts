import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A version of the demo app: good versions answer 200, bad ones fail `errorRatio` of requests. */
export interface DemoVersion {
  readonly version: string;
  readonly errorRatio: number;
}

/** The versions the demo knows: v1 is healthy, v2 is the bad deploy (80% 5xx). */
export const DEMO_VERSIONS: Readonly<Record<string, number>> = { v1: 0, v2: 0.8, v3: 0 };

export interface DemoAppOptions {
  /** Service label of the metrics, default `checkout`. */
  readonly service?: string;
  readonly host?: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Synthetic requests per second the app serves itself, default 50 (0: only real requests). */
  readonly rps?: number;
  readonly version?: string;
}

/** A running demo app. */
export interface DemoApp {
  readonly url: string;
  /** `host:port`, for a Prometheus scrape config. */
  readonly target: string;
  readonly port: number;
  version(): DemoVersion;
  /** Switches the running version (as `POST /admin/version` does). */
  setVersion(version: string): DemoVersion;
  /** Counters so far by status code. */
  counts(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

function errorRatioOf(version: string): number {
  return Object.hasOwn(DEMO_VERSIONS, version) ? (DEMO_VERSIONS[version] ?? 0) : 0;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      text += chunk;
      if (text.length > 10_000) reject(new Error("body too large"));
    });
    request.on("end", () => {
      resolve(text);
    });
    request.on("error", reject);
  });
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
}

/**
 * The demo's `checkout` service: an HTTP server that exports `http_requests_total{service,code}`
 * on `/metrics`, serves `GET /` (200, or 500 for the failing share of a bad version), and generates
 * its own steady traffic so the SLO has events without a load generator. `POST /admin/version`
 * `{ "version": "v2" }` deploys a version (v2 is bad); `GET /admin/version` tells the current one.
 */
export async function startDemoApp(options: DemoAppOptions = {}): Promise<DemoApp> {
  const service = options.service ?? "checkout";
  const rps = options.rps ?? 50;
  let current: DemoVersion = {
    version: options.version ?? "v1",
    errorRatio: errorRatioOf(options.version ?? "v1"),
  };
  const counts: Record<string, number> = { "200": 0, "500": 0 };
  // Deterministic error spreading: a running fraction, so a ratio of 0.8 is exactly 4 in 5.
  let errorCredit = 0;
  const serve = (): number => {
    errorCredit += current.errorRatio;
    let code = 200;
    if (errorCredit >= 1) {
      errorCredit -= 1;
      code = 500;
    }
    counts[String(code)] = (counts[String(code)] ?? 0) + 1;
    return code;
  };
  const setVersion = (version: string): DemoVersion => {
    current = { version, errorRatio: errorRatioOf(version) };
    errorCredit = 0;
    return current;
  };
  const metrics = () => {
    const lines = [
      "# HELP http_requests_total Requests served, by status code.",
      "# TYPE http_requests_total counter",
      ...Object.entries(counts).map(
        ([code, value]) => `http_requests_total{service="${service}",code="${code}"} ${value}`,
      ),
      "# HELP demo_app_info The running version.",
      "# TYPE demo_app_info gauge",
      `demo_app_info{service="${service}",version="${current.version}"} 1`,
    ];
    return `${lines.join("\n")}\n`;
  };
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method === "GET" && path === "/metrics") {
      response.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end(metrics());
    } else if (path === "/admin/version" && request.method === "GET") {
      json(response, 200, current);
    } else if (path === "/admin/version" && request.method === "POST") {
      let version: unknown;
      try {
        version = (JSON.parse(await readBody(request)) as { version?: unknown }).version;
      } catch {
        version = undefined;
      }
      if (typeof version !== "string" || !/^[\w.-]{1,40}$/.test(version)) {
        json(response, 400, { error: "invalid", message: 'body must be {"version": "v1"}' });
        return;
      }
      json(response, 200, setVersion(version));
    } else if (request.method === "GET" && path === "/healthz") {
      json(response, 200, { status: "ok" });
    } else if (request.method === "GET" && path === "/") {
      const code = serve();
      json(response, code, { service, version: current.version, ok: code === 200 });
    } else {
      json(response, 404, { error: "not-found" });
    }
  };
  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) json(response, 500, { error: "internal" });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? "127.0.0.1";
  const tickMs = 100;
  let owed = 0;
  const timer =
    rps > 0
      ? setInterval(() => {
          owed += (rps * tickMs) / 1000;
          while (owed >= 1) {
            owed -= 1;
            serve();
          }
        }, tickMs)
      : undefined;
  timer?.unref();
  return {
    url: `http://${host}:${port}`,
    target: `${host}:${port}`,
    port,
    version: () => current,
    setVersion,
    counts: () => ({ ...counts }),
    close: async () => {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
