import { readModelVersion, snapshot, verifyChain } from "@safedeploy/audit";
import type { FastifyReply } from "fastify";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { GatewayDeps } from "../deps.js";
import { ERROR_RESPONSES } from "../errors.js";
import { ChainReport, Snapshot } from "../schemas.js";
import { matchesIfNoneMatch, snapshotCache } from "../snapshot-cache.js";

/** How long an unchanged snapshot is served again (freezes begin and end with the clock). */
const SNAPSHOT_MAX_AGE_MS = 2_000;

/** The whole-system snapshot and the audit chain check. */
export const systemRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const snapshots = snapshotCache({
    version: () => readModelVersion(deps.pool),
    // Parsed once per build (not per request): the body is exactly the documented shape.
    load: async () =>
      Snapshot.parse(await snapshot(deps.pool, { now: deps.clock.now().toISOString() })),
    content: (built) => ({ ...built, at: null }),
    now: () => deps.clock.now().getTime(),
    maxAgeMs: SNAPSHOT_MAX_AGE_MS,
  });
  app.get(
    "/snapshot",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["system"],
        security: [{ bearer: [] }],
        summary: "Services, active incidents, open proposals, freezes in force, blocked services",
        description:
          "Built once for all concurrent requests and reused while nothing changed (at most 2 s); " +
          "send its weak ETag back in If-None-Match to get 304 while its content is unchanged.",
        response: { 200: Snapshot, 304: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { body, etag } = await snapshots.get();
      void reply.header("etag", etag).header("cache-control", "private, no-cache");
      if (matchesIfNoneMatch(request.headers["if-none-match"], etag)) {
        return reply.code(304).send(null);
      }
      // Already serialized (and parsed against Snapshot when built): Fastify sends a Buffer as it
      // is, so the typed reply is bypassed here only.
      return (reply as FastifyReply).type("application/json").send(body);
    },
  );

  app.get(
    "/audit/verify",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["system"],
        security: [{ bearer: [] }],
        summary:
          "Check the hash chain of the audit log, and its tail against JetStream; names the first bad row",
        response: { 200: ChainReport, ...ERROR_RESPONSES },
      },
    },
    async () =>
      verifyChain(deps.pool, {
        ...(deps.auditAnchors === undefined ? {} : { anchors: await deps.auditAnchors() }),
      }),
  );
  done();
};
