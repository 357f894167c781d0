import { evidenceBundle, getIncident, listIncidents } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { keysetOf, paginate } from "../pagination.js";
import { principalOf } from "../plugins/auth.js";
import { Evidence, IdParams, Incident, IncidentQuery, TransitionBody, listOf } from "../schemas.js";

const SECURED = { tags: ["incidents"], security: [{ bearer: [] }] };

const unknownIncident = (id: string) =>
  new ApiError("not_found", `no incident ${id}`, [
    { in: "params", path: "id", message: "unknown incident" },
  ]);

/** Incidents: list, one with its transitions, people's transitions, the evidence bundle. */
export const incidentRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/incidents",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Incidents, newest first",
        querystring: IncidentQuery,
        response: { 200: listOf(Incident), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service, state } = request.query;
      const found = await listIncidents(
        deps.pool,
        {
          ...(service === undefined ? {} : { service }),
          ...(state === undefined ? {} : { state }),
        },
        keysetOf(request.query, { parts: 2, first: "instant" }),
      );
      return paginate(found, (i) => [i.openedAt, i.id], ["desc", "asc"], request.query);
    },
  );

  app.get(
    "/incidents/:id",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "One incident with its timestamped transitions",
        params: IdParams,
        response: { 200: Incident, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const incident = await getIncident(deps.pool, request.params.id);
      if (incident === null) throw unknownIncident(request.params.id);
      return incident;
    },
  );

  app.post(
    "/incidents/:id/transitions",
    {
      config: { role: "approver" },
      schema: {
        ...SECURED,
        summary: "Move an incident to another state (409 when the move is illegal)",
        params: IdParams,
        body: TransitionBody,
        response: { 200: Incident, 409: ERROR_RESPONSES[400], ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { to, reason, link } = request.body;
      return runCommand(
        deps.sendCommand,
        "incident.transition",
        {
          incidentId: request.params.id,
          to,
          reason,
          actor: principalOf(request).name,
          ...(link === undefined ? {} : { link }),
        },
        { in: "params", path: "id" },
      );
    },
  );

  app.get(
    "/incidents/:id/evidence",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "The evidence bundle: decision, slo, budget, proposal, approval, resolution",
        params: IdParams,
        response: { 200: Evidence, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const bundle = await evidenceBundle(deps.pool, request.params.id);
      if (bundle === null) throw unknownIncident(request.params.id);
      return bundle;
    },
  );
  done();
};
