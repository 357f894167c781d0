import axios from "axios";
import type { AxiosInstance } from "axios";
import { ApiResponse, sampleValue } from "./api.js";
import type { QueryData } from "./api.js";
import { PrometheusError } from "./errors.js";

/** One series of an instant vector: its labels and value (NaN and ±Inf preserved). */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** Unix seconds the value was evaluated at. */
  readonly timestamp: number;
}

export interface QueryResult<T> {
  readonly data: T;
  /** Warnings Prometheus attached to a successful answer (e.g. partial data). */
  readonly warnings: readonly string[];
}

export interface PrometheusClientOptions {
  /** API base, e.g. `http://127.0.0.1:9090` (a path prefix such as `/prometheus` is kept). */
  readonly baseUrl: string;
  /** Per-request timeout; also sent to Prometheus as the query timeout. */
  readonly timeoutMs?: number;
  /** Attempts per query, including the first; only retryable failures are retried. */
  readonly attempts?: number;
  /** Base of the exponential backoff between attempts; full jitter is applied. */
  readonly backoffMs?: number;
  /** Queries in flight at once. */
  readonly concurrency?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Injected for tests that need determinism; defaults to Math.random. */
  readonly random?: () => number;
}

export interface PrometheusClient {
  /** An instant query. */
  query(promql: string, options?: { time?: Date }): Promise<QueryResult<QueryData>>;
  /** An instant query that must return a vector: one sample per series. */
  queryVector(promql: string, options?: { time?: Date }): Promise<QueryResult<Sample[]>>;
  /** An instant query that must return a scalar. */
  queryScalar(promql: string, options?: { time?: Date }): Promise<QueryResult<number>>;
  queryRange(
    promql: string,
    range: { start: Date; end: Date; stepSeconds: number },
  ): Promise<QueryResult<QueryData>>;
  /** Requests waiting for a free slot right now (for /metrics). */
  readonly queued: number;
}

/** A counting semaphore: at most `limit` tasks run at once, the rest wait in order. */
function limiter(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    get queued() {
      return waiting.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      active += 1;
      try {
        return await task();
      } finally {
        active -= 1;
        waiting.shift()?.();
      }
    },
  };
}

function classify(error: unknown): PrometheusError {
  if (error instanceof PrometheusError) return error;
  if (axios.isAxiosError(error)) {
    const status = error.response?.status;
    if (status === undefined) {
      const timedOut = error.code === "ECONNABORTED" || error.code === "ETIMEDOUT";
      return new PrometheusError(`Prometheus unreachable: ${error.code ?? error.message}`, {
        errorType: timedOut ? "timeout" : "network",
        retryable: true,
        cause: error,
      });
    }
    const body = ApiResponse.safeParse(error.response?.data);
    if (body.success && body.data.status === "error") {
      // 400 bad_data / 422 execution are the query's fault; 503/504 timeouts are transient.
      return new PrometheusError(`Prometheus ${body.data.errorType}: ${body.data.error}`, {
        errorType: body.data.errorType,
        retryable: status >= 500 || status === 429,
        status,
      });
    }
    return new PrometheusError(`Prometheus answered HTTP ${status}`, {
      errorType: "http",
      retryable: status >= 500 || status === 429,
      status,
    });
  }
  return new PrometheusError(`Prometheus query failed: ${String(error)}`, {
    errorType: "unknown",
    retryable: false,
  });
}

/**
 * A Prometheus HTTP API client: responses validated with zod, error bodies and warnings surfaced,
 * per-request timeouts, bounded retries with full jitter, and a concurrency limit.
 */
export function createPrometheusClient(options: PrometheusClientOptions): PrometheusClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempts = Math.max(1, options.attempts ?? 3);
  const backoffMs = options.backoffMs ?? 200;
  const random = options.random ?? Math.random;
  const slots = limiter(Math.max(1, options.concurrency ?? 8));
  const http: AxiosInstance = axios.create({
    baseURL: options.baseUrl.replace(/\/+$/, ""),
    timeout: timeoutMs,
    headers: { Accept: "application/json", ...options.headers },
    // Error bodies carry Prometheus' errorType: let every status reach the parser.
    validateStatus: () => true,
  });

  async function call(
    path: string,
    params: Record<string, string>,
  ): Promise<QueryResult<QueryData>> {
    const response = await http.post<unknown>(path, new URLSearchParams(params), {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    const body = ApiResponse.safeParse(response.data);
    if (!body.success) {
      throw new PrometheusError(
        `unexpected answer from Prometheus (HTTP ${response.status}): ${body.error.issues
          .slice(0, 3)
          .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
          .join("; ")}`,
        { errorType: "http", retryable: response.status >= 500, status: response.status },
      );
    }
    if (body.data.status === "error") {
      throw new PrometheusError(`Prometheus ${body.data.errorType}: ${body.data.error}`, {
        errorType: body.data.errorType,
        retryable: response.status >= 500 || response.status === 429,
        status: response.status,
      });
    }
    return { data: body.data.data, warnings: body.data.warnings ?? [] };
  }

  async function withRetries(path: string, params: Record<string, string>) {
    return slots.run(async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await call(path, params);
        } catch (error) {
          const failure = classify(error);
          if (!failure.retryable || attempt >= attempts) throw failure;
          const ceiling = backoffMs * 2 ** (attempt - 1);
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * ceiling)));
        }
      }
    });
  }

  const timeoutParam = `${Math.max(1, Math.floor(timeoutMs / 1_000))}s`;
  const instant = (promql: string, time?: Date) =>
    withRetries("/api/v1/query", {
      query: promql,
      timeout: timeoutParam,
      ...(time === undefined ? {} : { time: String(time.getTime() / 1_000) }),
    });

  return {
    get queued() {
      return slots.queued;
    },
    query: (promql, queryOptions = {}) => instant(promql, queryOptions.time),
    async queryVector(promql, queryOptions = {}) {
      const { data, warnings } = await instant(promql, queryOptions.time);
      if (data.resultType !== "vector") {
        throw new PrometheusError(`expected a vector from ${promql}, got a ${data.resultType}`, {
          errorType: "bad_data",
          retryable: false,
        });
      }
      return {
        warnings,
        data: data.result.map((series) => ({
          labels: series.metric,
          timestamp: series.value[0],
          value: sampleValue(series.value[1]),
        })),
      };
    },
    async queryScalar(promql, queryOptions = {}) {
      const { data, warnings } = await instant(promql, queryOptions.time);
      if (data.resultType !== "scalar") {
        throw new PrometheusError(`expected a scalar from ${promql}, got a ${data.resultType}`, {
          errorType: "bad_data",
          retryable: false,
        });
      }
      return { warnings, data: sampleValue(data.result[1]) };
    },
    queryRange: (promql, range) =>
      withRetries("/api/v1/query_range", {
        query: promql,
        start: String(range.start.getTime() / 1_000),
        end: String(range.end.getTime() / 1_000),
        step: String(range.stepSeconds),
        timeout: timeoutParam,
      }),
  };
}
