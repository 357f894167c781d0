import { readModelVersion, snapshot, verifyChain } from "@safedeploy/audit";
import type { StreamAnchor } from "@safedeploy/audit";
import type { FastifyReply } from "fastify";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { Timestamp } from "@safedeploy/schema";
import { z } from "zod";
import type { GatewayDeps } from "../deps.js";
import { ERROR_RESPONSES } from "../errors.js";
import { ChainReport, Snapshot, SnapshotSummary, summarizeSnapshot } from "../schemas.js";
import { matchesIfNoneMatch, snapshotCache } from "../snapshot-cache.js";
import { chainHead, verifyCache } from "../verify-cache.js";

/** How long an unchanged snapshot is served again (freezes begin and end with the clock). */
const SNAPSHOT_MAX_AGE_MS = 2_000;
/** How long a chain check is reused for an unchanged head (an in-place edit shows by then). */
const VERIFY_MAX_AGE_MS = 60_000;

/** The whole-system snapshot and the audit chain check. */
export const systemRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const declared = deps.catalog.services.map((service) => service.name);
  const read = () => snapshot(deps.pool, { now: deps.clock.now().toISOString() });
  // Parsed once per build (not per request): the body is exactly the documented shape.
  const build = async () => Snapshot.parse(await read());
  const cached = {
    version: () => readModelVersion(deps.pool),
    now: () => deps.clock.now().getTime(),
    maxAgeMs: SNAPSHOT_MAX_AGE_MS,
  };
  const snapshots = {
    full: snapshotCache({ ...cached, load: build, content: (built) => ({ ...built, at: null }) }),
    summary: snapshotCache({
      ...cached,
      // Only the lean form is checked: parsing every service's states to count them was most of
      // the summary's cost at 10,000 services.
      load: async () => SnapshotSummary.parse(summarizeSnapshot(await read(), declared)),
      content: (built) => ({ ...built, at: null }),
    }),
  };
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
          "send its weak ETag back in If-None-Match to get 304 while its content is unchanged. " +
          "`view=summary` is the form for large fleets: totals instead of every service's SLO " +
          "states (7 MB at 10,000 services), which `/v1/services` pages through.",
        querystring: z.object({
          view: z.enum(["full", "summary"], { message: "must be full or summary" }).default("full"),
        }),
        response: { 200: z.union([Snapshot, SnapshotSummary]), 304: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { body, etag } = await snapshots[request.query.view].get();
      void reply.header("etag", etag).header("cache-control", "private, no-cache");
      if (matchesIfNoneMatch(request.headers["if-none-match"], etag)) {
        return reply.code(304).send(null);
      }
      // Already serialized (and parsed against Snapshot when built): Fastify sends a Buffer as it
      // is, so the typed reply is bypassed here only.
      return (reply as FastifyReply).type("application/json").send(body);
    },
  );

  // The anchors (JetStream's ack floors) are read per request and are part of the cache key.
  const verifications = verifyCache({
    head: async (anchors: readonly StreamAnchor[] | undefined) =>
      `${await chainHead(deps.pool)}|${JSON.stringify(anchors ?? null)}`,
    verify: (anchors) => verifyChain(deps.pool, anchors === undefined ? {} : { anchors }),
    now: () => deps.clock.now(),
    maxAgeMs: VERIFY_MAX_AGE_MS,
  });
  app.get(
    "/audit/verify",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["system"],
        security: [{ bearer: [] }],
        summary:
          "Check the hash chain of the audit log, and its tail against JetStream; names the first bad row",
        description:
          "Checked once per chain head and reused while the head is unchanged (at most 60 s): " +
          "`checkedAt` says when; the `x-safedeploy-cache` header is `hit` for a reused outcome.",
        response: { 200: ChainReport.extend({ checkedAt: Timestamp }), ...ERROR_RESPONSES },
      },
    },
    async (_request, reply) => {
      const anchors = deps.auditAnchors === undefined ? undefined : await deps.auditAnchors();
      const verified = await verifications.get(anchors);
      void reply.header("x-safedeploy-cache", verified.cached ? "hit" : "miss");
      return { ...verified.report, checkedAt: verified.checkedAt };
    },
  );
  done();
};
