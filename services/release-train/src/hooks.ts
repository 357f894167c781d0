import type { TrainAction } from "@safedeploy/core";

/** One http hook call as the shell makes it: a `call-hook` action's request. */
export type HookRequest = Pick<
  Extract<TrainAction, { kind: "call-hook" }>,
  "url" | "method" | "headers" | "idempotencyKey" | "body"
>;

/** What a hook call gave: 2xx is `ok`; otherwise the status (when any) and a body excerpt. */
export interface HookResponse {
  readonly ok: boolean;
  readonly status: number | null;
  readonly detail: string;
}

/** How much of a failing hook's answer the evidence keeps. */
export const HOOK_EXCERPT_CHARS = 300;

/**
 * Calls an http hook: `method url` with the JSON body, the configured headers and
 * `Idempotency-Key` (so a call retried after a crash is safe for the receiver), bounded by
 * `timeoutMs`. Never throws: a non-2xx answer, a timeout or a refused connection is a failure
 * whose detail names the status and the start of the body.
 */
export async function callHttpHook(
  request: HookRequest,
  options: { readonly fetch: typeof globalThis.fetch; readonly timeoutMs: number },
): Promise<HookResponse> {
  try {
    const response = await options.fetch(request.url, {
      method: request.method,
      headers: {
        ...request.headers,
        "content-type": "application/json",
        "idempotency-key": request.idempotencyKey,
      },
      body: JSON.stringify(request.body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const text = await response.text().catch(() => "");
    const excerpt = text.replace(/\s+/g, " ").trim().slice(0, HOOK_EXCERPT_CHARS);
    const detail = `HTTP ${response.status}${excerpt === "" ? "" : `: ${excerpt}`}`;
    return { ok: response.status >= 200 && response.status < 300, status: response.status, detail };
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const cause =
      error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return {
      ok: false,
      status: null,
      detail: timedOut
        ? `no answer within ${options.timeoutMs} ms`
        : `${error instanceof Error ? error.message : String(error)}${cause}`,
    };
  }
}
