import { z } from "zod";

/** How one attempt ended: accepted (2xx), worth another try, or never going to work. */
export type AttemptOutcome =
  | { readonly kind: "delivered"; readonly status: number }
  | { readonly kind: "retry"; readonly status: number | null; readonly error: string }
  | { readonly kind: "give-up"; readonly status: number | null; readonly error: string };

/**
 * What an HTTP status means for a delivery (Standard Webhooks 1.0): 2xx delivered; 408, 429 and
 * 5xx are the receiver's trouble, retried; a redirect is not followed and, like any other 4xx,
 * is a refusal that retrying will not change.
 */
export function classifyStatus(status: number): AttemptOutcome {
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: "retry", status, error: `the receiver answered ${status}` };
  }
  return { kind: "give-up", status, error: `the receiver refused with ${status}` };
}

/** Standard Webhooks' schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, … */
export const STANDARD_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000,
];

/** The wait before attempt `attempt + 1` after `attempt` failed; the last entry repeats. */
export function retryDelayMs(attempt: number, schedule: readonly number[]): number {
  if (schedule.length === 0) return 0;
  return schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1] ?? 0;
}

/** What the notifier records per delivery id, so no replica and no redelivery sends it twice. */
export const DeliveryRecord = z.object({
  notifier: z.string(),
  eventId: z.string(),
  event: z.string(),
  state: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int().nonnegative(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  updatedAt: z.string(),
  /** Whether the outcome event of the last attempt is published (the audit log has it). */
  reported: z.boolean(),
});
export type DeliveryRecord = z.infer<typeof DeliveryRecord>;

/** Whether a delivery is over (delivered or given up): nothing is sent for it again. */
export function isSettled(record: DeliveryRecord | null): boolean {
  return record !== null && record.state !== "pending";
}

/**
 * The record after one attempt: delivered, given up (a refusal, or the last of `maxAttempts`),
 * or pending another try. Pure.
 */
export function recordAttempt(
  previous: DeliveryRecord | null,
  identity: Pick<DeliveryRecord, "notifier" | "eventId" | "event">,
  outcome: AttemptOutcome,
  maxAttempts: number,
  now: string,
): DeliveryRecord {
  const attempts = (previous?.attempts ?? 0) + 1;
  const state =
    outcome.kind === "delivered"
      ? "delivered"
      : outcome.kind === "give-up" || attempts >= maxAttempts
        ? "failed"
        : "pending";
  return {
    ...identity,
    state,
    attempts,
    lastStatus: outcome.status,
    lastError: outcome.kind === "delivered" ? null : outcome.error,
    updatedAt: now,
    reported: false,
  };
}

/** The `fetch` the client uses: Node's global, or a test's. */
export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * POSTs `body` to `url` once and classifies the answer. A redirect is never followed (the
 * receiver's origin is the one the operator named); a timeout or connection error is retried.
 * The error text names the status or the failure, never the URL (a Slack URL is a secret).
 */
export async function postOnce(
  fetch: Fetch,
  url: string,
  request: {
    readonly headers: Record<string, string>;
    readonly body: string;
    readonly timeoutMs: number;
  },
): Promise<AttemptOutcome> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...request.headers },
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    return classifyStatus(response.status);
  } catch (error) {
    const name = error instanceof Error ? error.name : "Error";
    const timedOut = name === "TimeoutError" || name === "AbortError";
    return {
      kind: "retry",
      status: null,
      error: timedOut ? `no answer within ${request.timeoutMs} ms` : `the request failed (${name})`,
    };
  }
}
