import type { TrainAction } from "@safedeploy/core";
import { OutboundRefusedError, fetchBounded } from "@safedeploy/release";

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
 * `timeoutMs`, its answer read up to 1 MiB. Redirects are followed within the hook's origin only:
 * the headers (secrets) never reach another origin. Never throws: a non-2xx answer, a timeout, a
 * refused connection, an oversized answer or a redirect elsewhere is a failure whose detail says
 * so (with the status and the start of the body when there was an answer).
 */
export async function callHttpHook(
  request: HookRequest,
  options: {
    readonly fetch: typeof globalThis.fetch;
    readonly timeoutMs: number;
    readonly maxBytes?: number;
  },
): Promise<HookResponse> {
  try {
    const { status, body } = await fetchBounded(
      request.url,
      {
        method: request.method,
        headers: {
          ...request.headers,
          "content-type": "application/json",
          "idempotency-key": request.idempotencyKey,
        },
        body: JSON.stringify(request.body),
      },
      options,
    );
    const excerpt = body.replace(/\s+/g, " ").trim().slice(0, HOOK_EXCERPT_CHARS);
    const detail = `HTTP ${status}${excerpt === "" ? "" : `: ${excerpt}`}`;
    return { ok: status >= 200 && status < 300, status, detail };
  } catch (error) {
    if (error instanceof OutboundRefusedError) {
      return { ok: false, status: null, detail: error.message };
    }
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
