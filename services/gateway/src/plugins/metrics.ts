import type { FastifyInstance } from "fastify";

/** Latency buckets of `gateway_http_request_duration_seconds`, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Series {
  readonly labels: string;
  count: number;
  sum: number;
  readonly buckets: number[];
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Request counts and a latency histogram by method, route and status, in Prometheus text. */
export class HttpMetrics {
  private readonly requests = new Map<string, { labels: string; value: number }>();
  private readonly durations = new Map<string, Series>();

  record(method: string, route: string, status: number, seconds: number): void {
    const base = `method="${escapeLabel(method)}",route="${escapeLabel(route)}"`;
    const counted = `${base},status="${status}"`;
    const entry = this.requests.get(counted) ?? { labels: counted, value: 0 };
    entry.value += 1;
    this.requests.set(counted, entry);
    let series = this.durations.get(base);
    if (series === undefined) {
      series = { labels: base, count: 0, sum: 0, buckets: BUCKETS.map(() => 0) };
      this.durations.set(base, series);
    }
    series.count += 1;
    series.sum += seconds;
    BUCKETS.forEach((bound, i) => {
      if (seconds <= bound && series.buckets[i] !== undefined) series.buckets[i] += 1;
    });
  }

  text(): string {
    const lines = [
      "# HELP gateway_http_requests_total HTTP requests answered, by method, route and status.",
      "# TYPE gateway_http_requests_total counter",
      ...[...this.requests.values()].map(
        (e) => `gateway_http_requests_total{${e.labels}} ${e.value}`,
      ),
      "# HELP gateway_http_request_duration_seconds Time to answer, by method and route.",
      "# TYPE gateway_http_request_duration_seconds histogram",
    ];
    for (const s of this.durations.values()) {
      BUCKETS.forEach((bound, i) => {
        lines.push(
          `gateway_http_request_duration_seconds_bucket{${s.labels},le="${bound}"} ${s.buckets[i] ?? 0}`,
        );
      });
      lines.push(`gateway_http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      lines.push(`gateway_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      lines.push(`gateway_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    return `${lines.join("\n")}\n`;
  }
}

/**
 * Records and logs every answer of `app` (routes by their pattern, unknown routes as `unmatched`;
 * never the URL, whose query may carry a token).
 */
export function measureRequests(app: FastifyInstance, metrics: HttpMetrics): void {
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.record(request.method, route, reply.statusCode, reply.elapsedTime / 1_000);
    request.log.debug(
      { method: request.method, route, status: reply.statusCode, ms: reply.elapsedTime },
      "request",
    );
  });
}
