import { readDoraHistory } from "@safedeploy/audit";
import { doraReport } from "@safedeploy/core";
import { ResourceName, Timestamp, parseDuration } from "@safedeploy/schema";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";

const SECURED = { tags: ["dora"], security: [{ bearer: [] }] };
const DAY_MS = 86_400_000;
/** The longest range one request may ask about: a bounded query, whatever is asked. */
export const MAX_RANGE_DAYS = 400;
const MAX_FAILURE_WINDOW_MS = 30 * DAY_MS;
const EARLIEST_MS = Date.parse("1970-01-01T00:00:00.000Z");
const LATEST_MS = Date.parse("2999-12-31T23:59:59.999Z");

/** `since`/`until`: an ISO 8601 instant, or a duration (`30d`) meaning that long before now. */
export const InstantOrAgo = z
  .string()
  .max(64)
  .refine((text) => Timestamp.safeParse(text).success || (parseDuration(text) ?? 0) > 0, {
    message: "must be an ISO 8601 time with offset or a duration such as 30d",
  });

/** The range of a history query, `since` default `defaultSince` before now, `until` default now. */
export function rangeQuery(defaultSince: string) {
  return z.object({
    since: InstantOrAgo.default(defaultSince),
    until: InstantOrAgo.optional(),
  });
}

/** [since, until) of a range query, or a 400 naming the field that makes no range. */
export function resolveRange(
  query: { since: string; until?: string | undefined },
  now: Date,
): { since: string; until: string } {
  const instant = (text: string) => {
    const ago = parseDuration(text);
    return ago === undefined ? new Date(text) : new Date(now.getTime() - ago);
  };
  const since = instant(query.since);
  const until = query.until === undefined ? now : instant(query.until);
  const refuse = (path: string, message: string) =>
    new ApiError("invalid_request", `${path}: ${message}`, [{ in: "querystring", path, message }]);
  // PostgreSQL has no year 0 and ISO 8601 four-digit years; a lookahead must stay within them.
  for (const [path, date] of [
    ["since", since],
    ["until", until],
  ] as const) {
    const t = date.getTime();
    if (Number.isNaN(t) || t < EARLIEST_MS || t > LATEST_MS) {
      throw refuse(path, "must be a time from 1970 to 2999");
    }
  }
  if (since.getTime() >= until.getTime()) throw refuse("since", "must be before until");
  if (until.getTime() - since.getTime() > MAX_RANGE_DAYS * DAY_MS) {
    throw refuse("since", `the range may span at most ${MAX_RANGE_DAYS} days`);
  }
  return { since: since.toISOString(), until: until.toISOString() };
}

const DoraQuery = rangeQuery("30d").extend({
  service: ResourceName.optional(),
  team: z.string().trim().min(1).max(200).optional(),
  failureWindow: z
    .string()
    .max(32)
    .default("24h")
    .refine((text) => {
      const ms = parseDuration(text) ?? 0;
      return ms > 0 && ms <= MAX_FAILURE_WINDOW_MS;
    }, "must be a duration from 1s to 30d"),
});

const Stats = z.object({
  samples: z.number().int(),
  medianSeconds: z.number().nullable(),
  p90Seconds: z.number().nullable(),
  meanSeconds: z.number().nullable(),
});
const Metrics = z.object({
  deploys: z.number().int(),
  deploysPerDay: z.number(),
  leadTime: Stats,
  failedDeploys: z.number().int(),
  changeFailureRate: z.number().nullable(),
  incidents: z.number().int(),
  unresolvedIncidents: z.number().int(),
  timeToRestore: Stats,
});
const DoraAnswer = z
  .object({
    since: z.string(),
    until: z.string(),
    failureWindow: z.string(),
    filter: z.object({ service: z.string().nullable(), team: z.string().nullable() }),
    overall: Metrics,
    services: z.array(Metrics.extend({ service: z.string(), team: z.string().nullable() })),
    teams: z.array(Metrics.extend({ team: z.string().nullable() })),
  })
  .meta({ id: "Dora" });

/** `GET /v1/dora`: the four DORA keys from the audit log, per service, team and overall. */
export const doraRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const owners = Object.fromEntries(deps.catalog.services.map((s) => [s.name, s.owner]));
  app.get(
    "/dora",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "DORA metrics: deploy frequency, lead time, change failure rate, time to restore",
        description:
          "From the audit log over [since, until): a deploy is a `governance.deploy-recorded` with trigger `on-deployed` or `on-rollout-completed` (one per service and revision); it failed when an incident of its service opened, or it was rolled back, within `failureWindow` and before the next deploy. Teams are the catalog owners. See docs/dora.md.",
        querystring: DoraQuery,
        response: { 200: DoraAnswer, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service, team, failureWindow } = request.query;
      if (team !== undefined && !Object.values(owners).includes(team)) {
        throw new ApiError("not_found", `no service of team ${team} in the catalog`, [
          { in: "querystring", path: "team", message: "unknown team" },
        ]);
      }
      const range = resolveRange(request.query, deps.clock.now());
      const failureWindowMs = parseDuration(failureWindow) ?? 0;
      const history = await readDoraHistory(deps.pool, range, {
        lookbackMs: failureWindowMs,
        lookaheadMs: failureWindowMs,
      });
      const report = doraReport({
        ...range,
        ...history,
        failureWindowMs,
        owners,
        filter: { service, team },
      });
      return {
        since: report.since,
        until: report.until,
        overall: report.overall,
        services: [...report.services],
        teams: [...report.teams],
        failureWindow,
        filter: { service: service ?? null, team: team ?? null },
      };
    },
  );
  done();
};
