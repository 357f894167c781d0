/**
 * Outbound HTTP for health probes and strategy hooks, bounded: the answer's body is read as a
 * stream and refused past a cap, redirects are followed within the request's origin only (a hook's
 * headers carry secrets: they must never reach another origin), and the whole exchange, body
 * included, runs under one timeout.
 */

/** The largest answer body read: 1 MiB. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Redirects followed (same origin only) before giving up. */
export const MAX_REDIRECTS = 5;

/** Why a bounded request got no usable answer; `message` says so for the evidence. */
export class OutboundRefusedError extends Error {
  readonly code: "body-too-large" | "cross-origin-redirect" | "too-many-redirects";
  constructor(message: string, code: OutboundRefusedError["code"]) {
    super(message);
    this.name = "OutboundRefusedError";
    this.code = code;
  }
}

export interface BoundedRequest {
  readonly method: "GET" | "POST" | "PUT";
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface BoundedOptions {
  readonly fetch: typeof globalThis.fetch;
  readonly timeoutMs: number;
  readonly maxBytes?: number;
}

export interface BoundedAnswer {
  readonly status: number;
  readonly body: string;
  /** The URL that answered (after same-origin redirects). */
  readonly url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Reads a body up to `maxBytes`, cancelling the stream and throwing past it. */
async function readCapped(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early (the throw) cancels the stream: nothing more is read.
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      throw new OutboundRefusedError(
        `response body exceeds ${maxBytes} bytes; not read further`,
        "body-too-large",
      );
    }
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Where a redirect points, or null when the answer is not one. */
function redirectTarget(response: Response, from: URL): URL | null {
  const location = response.headers.get("location");
  if (!REDIRECTS.has(response.status) || location === null) return null;
  return new URL(location, from);
}

/**
 * One request with its answer's body, bounded (see the module's doc). A redirect to another
 * origin is not followed (its target never sees the request or its headers): it fails with an
 * {@link OutboundRefusedError}, as does a body past the cap. A 303 (and a 301/302 after a POST
 * or PUT) continues as a GET without body, as browsers do. Timeouts throw fetch's `TimeoutError`.
 */
export async function fetchBounded(
  url: string,
  request: BoundedRequest,
  options: BoundedOptions,
): Promise<BoundedAnswer> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const origin = new URL(url).origin;
  let current = new URL(url);
  let { method, body } = request;
  for (let hop = 0; ; hop += 1) {
    const response = await options.fetch(current, {
      method,
      headers: request.headers,
      ...(body === undefined ? {} : { body }),
      redirect: "manual",
      signal,
    });
    const target = redirectTarget(response, current);
    if (target === null) {
      const text = await readCapped(response, options.maxBytes ?? MAX_BODY_BYTES);
      return { status: response.status, body: text, url: current.href };
    }
    await response.body?.cancel().catch(() => undefined);
    if (target.origin !== origin) {
      throw new OutboundRefusedError(
        `redirect (${response.status}) to another origin, ${target.origin}, not followed`,
        "cross-origin-redirect",
      );
    }
    if (hop >= MAX_REDIRECTS) {
      throw new OutboundRefusedError(
        `more than ${MAX_REDIRECTS} redirects; not followed further`,
        "too-many-redirects",
      );
    }
    if (response.status === 303 || (method !== "GET" && response.status <= 302)) {
      method = "GET";
      body = undefined;
    }
    current = target;
  }
}
