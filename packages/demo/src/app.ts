import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A version of the demo app: good versions answer 200, bad ones fail `errorRatio` of requests. */
export interface DemoVersion {
  readonly version: string;
  readonly errorRatio: number;
}

/** What a version's `/healthz` reports of itself: `degraded` still serves, but is not fit. */
export type DemoHealthStatus = "ok" | "degraded";

/** How a version of the demo app behaves. */
export interface DemoVersionBehaviour {
  /** The share of `GET /` answered 500. */
  readonly errorRatio: number;
  /** What the version reports on `/healthz` (always with status 200). */
  readonly health: DemoHealthStatus;
}

/**
 * The versions the demo knows: v1 and v3 are healthy, v2 is the bad deploy (80% 5xx), v4 is
 * degraded (serves every request, but its `/healthz` says `degraded`: only a content check sees
 * it). Any other version behaves like v1.
 */
export const DEMO_VERSIONS: Readonly<Record<string, DemoVersionBehaviour>> = {
  v1: { errorRatio: 0, health: "ok" },
  v2: { errorRatio: 0.8, health: "ok" },
  v3: { errorRatio: 0, health: "ok" },
  v4: { errorRatio: 0, health: "degraded" },
};

const UNKNOWN_VERSION: DemoVersionBehaviour = { errorRatio: 0, health: "ok" };

/** The body of `GET /healthz`: degraded when the version is, or when the dependency is down. */
export interface DemoHealth {
  readonly status: DemoHealthStatus;
  readonly version: string;
  readonly checks: {
    /** What the running version reports of itself. */
    readonly version: DemoHealthStatus;
    /** The outside dependency (`POST /admin/dependency`): `ok` or `down`. */
    readonly dependency: "ok" | "down";
  };
}

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
  /** What `GET /healthz` answers now. */
  health(): DemoHealth;
  /** Breaks (`false`) or heals (`true`) the outside dependency (as `POST /admin/dependency` does). */
  setDependencyHealthy(healthy: boolean): DemoHealth;
  /** Counters so far by status code. */
  counts(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

function behaviourOf(version: string): DemoVersionBehaviour {
  return Object.hasOwn(DEMO_VERSIONS, version)
    ? (DEMO_VERSIONS[version] ?? UNKNOWN_VERSION)
    : UNKNOWN_VERSION;
}

/** The JSON body of a request, or `undefined` when it is not JSON. */
async function readJson(request: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse(await readBody(request)) as unknown;
  } catch {
    return undefined;
  }
}

/** One field of a JSON object body, or `undefined` when the body is not an object. */
function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null && Object.hasOwn(body, name)
    ? (body as Record<string, unknown>)[name]
    : undefined;
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
 *
 * `GET /healthz` always answers 200 with `{ "status", "version", "checks": { "version",
 * "dependency" } }`: `status` is `ok`, or `degraded` when the running version is (v4, see
 * {@link DEMO_VERSIONS}) or the outside dependency is down, so only a check of the content notices.
 * `POST /admin/dependency` `{ "healthy": false }` takes the dependency down whatever the version,
 * `{ "healthy": true }` brings it back; it answers the new health, or 400 naming the bad field.
 */
export async function startDemoApp(options: DemoAppOptions = {}): Promise<DemoApp> {
  const service = options.service ?? "checkout";
  const rps = options.rps ?? 50;
  let current: DemoVersion = {
    version: options.version ?? "v1",
    errorRatio: behaviourOf(options.version ?? "v1").errorRatio,
  };
  let dependencyHealthy = true;
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
    current = { version, errorRatio: behaviourOf(version).errorRatio };
    errorCredit = 0;
    return current;
  };
  const health = (): DemoHealth => {
    const checks = {
      version: behaviourOf(current.version).health,
      dependency: dependencyHealthy ? ("ok" as const) : ("down" as const),
    };
    const fit = checks.version === "ok" && checks.dependency === "ok";
    return { status: fit ? "ok" : "degraded", version: current.version, checks };
  };
  const setDependencyHealthy = (healthy: boolean): DemoHealth => {
    dependencyHealthy = healthy;
    return health();
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
      const version = field(await readJson(request), "version");
      if (typeof version !== "string" || !/^[\w.-]{1,40}$/.test(version)) {
        json(response, 400, { error: "invalid", message: 'body must be {"version": "v1"}' });
        return;
      }
      json(response, 200, setVersion(version));
    } else if (path === "/admin/dependency" && request.method === "POST") {
      const healthy = field(await readJson(request), "healthy");
      if (typeof healthy !== "boolean") {
        json(response, 400, {
          error: "invalid",
          field: "healthy",
          message: 'healthy must be true or false: body must be {"healthy": false}',
        });
        return;
      }
      json(response, 200, setDependencyHealthy(healthy));
    } else if (request.method === "GET" && path === "/healthz") {
      json(response, 200, health());
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
    health,
    setDependencyHealthy,
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
