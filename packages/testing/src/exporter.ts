import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** Simulated traffic of one service: requests per second and the share that fail with 500. */
export interface Traffic {
  readonly rps: number;
  readonly errorRatio: number;
}

/**
 * A real HTTP exporter in Prometheus text format whose traffic a test controls. It counts
 * `http_requests_total{service, code}` as if `rps` requests per second arrived, `errorRatio` of
 * them failing, advancing every 100 ms.
 */
export interface TrafficExporter {
  /** `host:port`, for a Prometheus scrape target. */
  readonly target: string;
  readonly url: string;
  setTraffic(service: string, traffic: Traffic): void;
  close(): Promise<void>;
}

export async function startTrafficExporter(
  initial: Readonly<Record<string, Traffic>> = {},
): Promise<TrafficExporter> {
  const traffic = new Map<string, Traffic>(Object.entries(initial));
  const counters = new Map<string, { ok: number; failed: number }>();
  const tickMs = 100;
  const timer = setInterval(() => {
    for (const [service, { rps, errorRatio }] of traffic) {
      const counter = counters.get(service) ?? { ok: 0, failed: 0 };
      const requests = (rps * tickMs) / 1_000;
      counter.failed += requests * errorRatio;
      counter.ok += requests * (1 - errorRatio);
      counters.set(service, counter);
    }
  }, tickMs);

  const server = createServer((request, response) => {
    if (request.url !== "/metrics") {
      response.writeHead(404).end();
      return;
    }
    const lines = [
      "# HELP http_requests_total Requests served, by service and status code.",
      "# TYPE http_requests_total counter",
    ];
    for (const [service, counter] of counters) {
      // Counters only ever go up; integers keep them honest for rate().
      lines.push(`http_requests_total{service="${service}",code="200"} ${Math.floor(counter.ok)}`);
      lines.push(
        `http_requests_total{service="${service}",code="500"} ${Math.floor(counter.failed)}`,
      );
    }
    response
      .writeHead(200, { "Content-Type": "text/plain; version=0.0.4" })
      .end(`${lines.join("\n")}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    target: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    setTraffic: (service, next) => {
      traffic.set(service, next);
    },
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
