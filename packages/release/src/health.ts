import { evaluateHealthCheck } from "@safedeploy/core";
import type { CheckResult, HealthObservation } from "@safedeploy/core";
import type { HealthCheck } from "@safedeploy/schema";

/** The effects a probe needs: a fetch, a bound on each request, and a monotonic clock. */
export interface ProbeDeps {
  readonly fetch: typeof globalThis.fetch;
  /** Abort a probe after this long; the check then fails as `request`. Default 10 s. */
  readonly timeoutMs?: number;
  /** Milliseconds from an arbitrary origin, for latency. Default `performance.now`. */
  readonly clock?: () => number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

function reason(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError" || error.name === "AbortError") return "timed out";
    const cause = (error as { cause?: unknown }).cause;
    const code = (cause as { code?: unknown } | undefined)?.code;
    return typeof code === "string" ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

/**
 * Probes a health check's endpoint once: GET, the whole body read, the latency measured until the
 * body arrived. Never throws: a refused connection, a timeout or a broken body is an observation
 * `{ error }`, which the check then fails as `request`.
 */
export async function probeHealth(check: HealthCheck, deps: ProbeDeps): Promise<HealthObservation> {
  const clock = deps.clock ?? (() => performance.now());
  const started = clock();
  try {
    const response = await deps.fetch(check.http, {
      method: "GET",
      headers: { accept: "application/json, text/plain;q=0.9, */*;q=0.8" },
      redirect: "manual",
      signal: AbortSignal.timeout(deps.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    const body = await response.text();
    return { status: response.status, body, latencyMs: clock() - started };
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
