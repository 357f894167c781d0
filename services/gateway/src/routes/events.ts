import { once } from "node:events";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { decodeFeedCursor, feedHeads, readFeed } from "../feed.js";
import type { FeedCursor } from "../feed.js";
import { EventsQuery } from "../schemas.js";

const PAGE = 500;

/**
 * `GET /v1/events`: server-sent events of every stream, read from the audit log (which stores
 * every message of every stream; the gateway's NATS user may not read them all). `id:` is a
 * cursor, so `Last-Event-ID` resumes; `event:` is the message type; `data:` the envelope.
 */
export const eventRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const pollMs = deps.events?.pollMs ?? 250;
  const heartbeatMs = deps.events?.heartbeatMs ?? 15_000;
  const open = new Set<() => void>();
  app.addHook("preClose", (hookDone) => {
    for (const end of open) end();
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
        querystring: EventsQuery,
        response: ERROR_RESPONSES,
      },
    },
    async (request, reply) => {
      const lastEventId = request.headers["last-event-id"];
      let cursor: FeedCursor;
      if (typeof lastEventId === "string" && lastEventId !== "") {
        const resumed = decodeFeedCursor(lastEventId);
        if (resumed === null) {
          throw new ApiError("invalid_request", "headers.last-event-id: not an event id", [
            { in: "headers", path: "last-event-id", message: "not an event id this API issued" },
          ]);
        }
        cursor = resumed;
      } else {
        cursor = request.query.from === "start" ? {} : await feedHeads(deps.pool);
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
      let timer: NodeJS.Timeout | undefined;
      const heartbeat = setInterval(() => {
        raw.write(": heartbeat\n\n");
      }, heartbeatMs);
      const end = () => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        clearInterval(heartbeat);
        open.delete(end);
        raw.end();
      };
      open.add(end);
      request.raw.on("close", end);
      raw.on("error", end);

      const poll = async () => {
        try {
          for (;;) {
            const page = await readFeed(deps.pool, cursor, PAGE);
            for (const entry of page.entries) {
              if (closed) return;
              if (types !== null && !types.has(entry.type ?? "")) continue;
              const frame = `id: ${entry.cursor}\nevent: ${entry.type ?? "message"}\ndata: ${JSON.stringify(entry.payload)}\n\n`;
              if (!raw.write(frame)) await Promise.race([once(raw, "drain"), once(raw, "close")]);
            }
            cursor = page.cursor;
            if (!page.full || closed) break;
          }
        } catch (error) {
          // The database being away delays events; the stream stays open and catches up.
          request.log.warn({ err: error }, "events: reading the audit log failed");
        }
        if (!closed) {
          timer = setTimeout(() => {
            void poll();
          }, pollMs);
        }
      };
      void poll();
      request.log.debug({ types: types === null ? null : [...types] }, "events stream opened");
    },
  );
  done();
};
