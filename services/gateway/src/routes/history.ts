import { readChartMarkers, readEvaluationHistory, readIncidentTimeline } from "@safedeploy/audit";
import { sloSeries } from "@safedeploy/core";
import { ResourceName, parseDuration } from "@safedeploy/schema";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { IdParams } from "../schemas.js";
import { InstantOrAgo, rangeQuery, resolveRange } from "./dora.js";

const SECURED = { tags: ["history"], security: [{ bearer: [] }] };
/** Deploys this long before an incident opened are on its timeline (likely causes). */
const TIMELINE_DEPLOYS_BEFORE_MS = 86_400_000;

const HistoryQuery = rangeQuery("30d").extend({
  // No default: the SLO's own window (the budget's) is the default range.
  since: InstantOrAgo.optional(),
  points: z.coerce.number().int().min(10).max(2_000).default(500),
});
const Marker = z.object({
  kind: z.enum([
    "incident-opened",
    "incident-resolved",
    "deploy",
    "freeze-opened",
    "freeze-lifted",
  ]),
  at: z.string(),
  ref: z.string(),
  label: z.string(),
});
const SloHistory = z
  .object({
    service: z.string(),
    slo: z.string(),
    objective: z.number(),
    window: z.string(),
    since: z.string(),
    until: z.string(),
    rules: z.array(
      z.object({ severity: z.string(), factor: z.number(), long: z.string(), short: z.string() }),
    ),
    series: z.object({
      times: z.array(z.number()),
      budgetRemaining: z.array(z.number().nullable()),
      burnRates: z.array(z.object({ window: z.string(), values: z.array(z.number().nullable()) })),
      evaluations: z.number().int(),
    }),
    markers: z.array(Marker),
  })
  .meta({ id: "SloHistory" });
const Timeline = z
  .object({
    incidentId: z.string(),
    service: z.string(),
    slo: z.string().nullable(),
    openedAt: z.string(),
    resolvedAt: z.string().nullable(),
    entries: z.array(
      z.object({
        at: z.string(),
        type: z.string(),
        summary: z.string(),
        messageId: z.string().nullable(),
        stream: z.string(),
        seq: z.number().int(),
      }),
    ),
  })
  .meta({ id: "IncidentTimeline" });

/** A window's length, for ordering windows shortest first. */
const lengthOf = (window: string) => parseDuration(window) ?? Number.MAX_SAFE_INTEGER;

/**
 * History from the audit log for the dashboard's charts: an SLO's budget and burn rates over a
 * range with the moments to mark, and an incident's timeline.
 */
export const historyRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const declared = new Map(deps.catalog.services.map((s) => [s.name, s]));

  app.get(
    "/services/:name/slos/:slo/history",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "An SLO's error budget (burn-down) and burn rate per window over time",
        description:
          "Budget evaluations from the audit log over [since, until) (default: the SLO's window up to now), folded into at most `points` points (the last budget and highest burn rate of each), with incidents, deploys and freezes to mark.",
        params: z.object({ name: ResourceName, slo: ResourceName }),
        querystring: HistoryQuery,
        response: { 200: SloHistory, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { name, slo: sloName } = request.params;
      const service = declared.get(name);
      const slo = service?.spec.slos.find((s) => s.name === sloName);
      if (service === undefined || slo === undefined) {
        const path = service === undefined ? "name" : "slo";
        throw new ApiError("not_found", `no SLO ${sloName} of service ${name} in the catalog`, [
          { in: "params", path, message: `unknown ${path === "name" ? "service" : "SLO"}` },
        ]);
      }
      const { points } = request.query;
      const range = resolveRange(
        { since: request.query.since ?? slo.window, until: request.query.until },
        deps.clock.now(),
      );
      const bucketMs = Math.max(
        1,
        Math.ceil((Date.parse(range.until) - Date.parse(range.since)) / points),
      );
      const [history, markers] = await Promise.all([
        readEvaluationHistory(deps.pool, { service: name, slo: sloName }, range, bucketMs),
        readChartMarkers(deps.pool, name, range),
      ]);
      const series = sloSeries(history.points, points);
      series.burnRates.sort((a, b) => lengthOf(a.window) - lengthOf(b.window));
      return {
        service: name,
        slo: sloName,
        objective: slo.objective,
        window: slo.window,
        ...range,
        rules: service.policy.burnRates.map(({ severity, factor, long, short }) => ({
          severity,
          factor,
          long,
          short,
        })),
        series: { ...series, evaluations: history.evaluations },
        markers,
      };
    },
  );

  app.get(
    "/incidents/:id/timeline",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "An incident's timeline from the audit log",
        description:
          "Its events, its proposals with their approvals and actions, and the service's deploys from a day before it opened until it was resolved, by time, each with its stream and sequence.",
        params: IdParams,
        response: { 200: Timeline, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const timeline = await readIncidentTimeline(
        deps.pool,
        request.params.id,
        TIMELINE_DEPLOYS_BEFORE_MS,
        deps.clock.now().toISOString(),
      );
      if (timeline === null) {
        throw new ApiError("not_found", `no incident ${request.params.id}`, [
          { in: "params", path: "id", message: "unknown incident" },
        ]);
      }
      return { ...timeline, entries: [...timeline.entries] };
    },
  );
  done();
};
