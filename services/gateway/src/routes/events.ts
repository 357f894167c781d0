import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { decodeFeedCursor, feedHeads, readFeed } from "../feed.js";
import type { FeedCursor } from "../feed.js";
import { FeedHub } from "../feed-hub.js";
import { principalOf } from "../plugins/auth.js";
import { EventsQuery } from "../schemas.js";

const PAGE = 500;
/** Streams one token may hold open at once when not configured. */
export const DEFAULT_STREAMS_PER_TOKEN = 4;
/** Bytes a stream may have waiting to be sent before it is dropped as too slow (it resumes). */
const MAX_BUFFERED = 8 * 1024 * 1024;
/** A message type as an `event:` name; anything else (a newline, a colon) is sent as `message`. */
const EVENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** The `event:` line of a stored message: its type when that is a plain name, never raw text. */
export function eventName(type: string | null): string {
  return type !== null && EVENT_NAME.test(type) ? type : "message";
}

/** The `/metrics` lines of the event streams. */
export function eventMetrics(hub: FeedHub): string {
  return [
    "# HELP gateway_events_streams Server-sent event streams open now.",
    "# TYPE gateway_events_streams gauge",
    `gateway_events_streams ${hub.size}`,
    "# HELP gateway_events_reads_total Reads of the audit log by the shared event poller.",
    "# TYPE gateway_events_reads_total counter",
    `gateway_events_reads_total ${hub.polls}`,
    "",
  ].join("\n");
}

/**
 * `GET /v1/events`: server-sent events of every stream, read from the audit log (which stores
 * every message of every stream; the gateway's NATS user may not read them all). `id:` is a
 * cursor, so `Last-Event-ID` resumes; `event:` is the message type; `data:` the envelope. Every
 * stream is fed by one shared poller ({@link FeedHub}); a token holds at most
 * `streamsPerToken` open at once (429 with Retry-After beyond).
 */
export const eventRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps; hub: FeedHub }> = (
  app,
  { deps, hub },
  done,
) => {
  const heartbeatMs = deps.events?.heartbeatMs ?? 15_000;
  const perToken = deps.events?.streamsPerToken ?? DEFAULT_STREAMS_PER_TOKEN;
  const openByToken = new Map<string, number>();
  const open = new Set<() => void>();
  app.addHook("preClose", (hookDone) => {
    for (const end of open) end();
    hub.stop();
    hookDone();
  });

  app.get(
    "/events",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["events"],
        security: [{ bearer: [] }],
        summary: "Server-sent events of every stream (text/event-stream); resumes by Last-Event-ID",
        description: `At most ${perToken} streams per token at once: one more answers 429 with Retry-After.`,
        querystring: EventsQuery,
        response: ERROR_RESPONSES,
      },
    },
    async (request, reply) => {
      const holder = principalOf(request).name;
      if ((openByToken.get(holder) ?? 0) >= perToken) {
        void reply.header("retry-after", "5");
        throw new ApiError(
          "rate_limited",
          `${holder} already has ${perToken} event streams open (the most per token); close one or retry later`,
        );
      }
      // Counted before the first await, so concurrent requests of one token cannot all slip in.
      openByToken.set(holder, (openByToken.get(holder) ?? 0) + 1);
      const release = () => {
        const left = (openByToken.get(holder) ?? 1) - 1;
        if (left <= 0) openByToken.delete(holder);
        else openByToken.set(holder, left);
      };
      let cursor: FeedCursor;
      try {
        cursor = await startingCursor(request.headers["last-event-id"], request.query.from);
      } catch (error) {
        release();
        throw error;
      }
      const types =
        request.query.types === undefined
          ? null
          : new Set(
              request.query.types
                .split(",")
                .map((t) => t.trim())
                .filter((t) => t !== ""),
            );

      reply.hijack();
      const raw = reply.raw;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (typeof value === "string" || typeof value === "number") headers[name] = String(value);
      }
      raw.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      raw.write("retry: 2000\n\n");

      let closed = false;
      const heartbeat = setInterval(() => {
        raw.write(": heartbeat\n\n");
      }, heartbeatMs);
      const unsubscribe = hub.subscribe(cursor, (entry, id) => {
        if (types !== null && !types.has(entry.type ?? "")) return;
        raw.write(
          `id: ${id}\nevent: ${eventName(entry.type)}\ndata: ${JSON.stringify(entry.payload)}\n\n`,
        );
        // A client that does not read would grow this without bound; it resumes by its last id.
        if (raw.writableLength > MAX_BUFFERED) end();
      });
      function end() {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        open.delete(end);
        release();
        raw.end();
      }
      open.add(end);
      request.raw.on("close", end);
      raw.on("error", end);
      request.log.debug({ types: types === null ? null : [...types] }, "events stream opened");
    },
  );

  /** Where a new stream starts: after its Last-Event-ID, at the log's start, or at its end. */
  async function startingCursor(lastEventId: string | string[] | undefined, from: string) {
    if (typeof lastEventId === "string" && lastEventId !== "") {
      const resumed = decodeFeedCursor(lastEventId);
      if (resumed === null) {
        throw new ApiError("invalid_request", "headers.last-event-id: not an event id", [
          { in: "headers", path: "last-event-id", message: "not an event id this API issued" },
        ]);
      }
      return resumed;
    }
    return from === "start" ? {} : await feedHeads(deps.pool);
  }
  done();
};

/** The shared poller of `/v1/events` over `deps`' pool. */
export function feedHub(deps: GatewayDeps, onError: (error: unknown) => void): FeedHub {
  return new FeedHub({
    read: (cursor, limit) => readFeed(deps.pool, cursor, limit),
    heads: () => feedHeads(deps.pool),
    pollMs: deps.events?.pollMs ?? 250,
    pageSize: PAGE,
    onError,
  });
}
