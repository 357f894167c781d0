import { evaluateHealthCheck } from "@safedeploy/core";
import type { CheckResult, HealthObservation } from "@safedeploy/core";
import type { HealthCheck } from "@safedeploy/schema";
import { OutboundRefusedError, fetchBounded } from "./http.js";

/** The effects a probe needs: a fetch, a bound on each request, and a monotonic clock. */
export interface ProbeDeps {
  readonly fetch: typeof globalThis.fetch;
  /** Abort a probe after this long; the check then fails as `request`. Default 10 s. */
  readonly timeoutMs?: number;
  /** The largest body read (default 1 MiB); a longer one fails the check as `request`. */
  readonly maxBytes?: number;
  /** Milliseconds from an arbitrary origin, for latency. Default `performance.now`. */
  readonly clock?: () => number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

function reason(error: unknown): string {
  if (error instanceof OutboundRefusedError) return error.message;
  if (error instanceof Error) {
    if (error.name === "TimeoutError" || error.name === "AbortError") return "timed out";
    const cause = (error as { cause?: unknown }).cause;
    const code = (cause as { code?: unknown } | undefined)?.code;
    return typeof code === "string" ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

/**
 * Probes a health check's endpoint once: GET (redirects followed within its origin only), the
 * whole body read up to 1 MiB, the latency measured until the body arrived. Never throws: a
 * refused connection, a timeout, a broken or oversized body or a redirect to another origin is an
 * observation `{ error }`, which the check then fails as `request`.
 */
export async function probeHealth(check: HealthCheck, deps: ProbeDeps): Promise<HealthObservation> {
  const clock = deps.clock ?? (() => performance.now());
  const started = clock();
  try {
    const answer = await fetchBounded(
      check.http,
      { method: "GET", headers: { accept: "application/json, text/plain;q=0.9, */*;q=0.8" } },
      {
        fetch: deps.fetch,
        timeoutMs: deps.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ...(deps.maxBytes === undefined ? {} : { maxBytes: deps.maxBytes }),
      },
    );
    return { status: answer.status, body: answer.body, latencyMs: clock() - started };
  } catch (error) {
    return { error: reason(error), latencyMs: clock() - started };
  }
}

/** Probes and judges every check, in parallel, in the order given. */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  deps: ProbeDeps,
): Promise<CheckResult[]> {
  return Promise.all(
    checks.map(async (check) => evaluateHealthCheck(check, await probeHealth(check, deps))),
  );
}
