import { listGuards } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { paginate } from "../pagination.js";
import { principalOf } from "../plugins/auth.js";
import { Cleared, Guard, GuardParams, GuardQuery, ReasonBody, listOf } from "../schemas.js";

const SECURED = { tags: ["guards"], security: [{ bearer: [] }] };

/**
 * Failed release-train guards: each blocks its service's gate (`release-guard-failed`) until the
 * service's revert is executed or an approver clears it here.
 */
export const guardRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/guards",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Failed release guards blocking services now (all=true: cleared ones too)",
        querystring: GuardQuery,
        response: { 200: listOf(Guard), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service, all } = request.query;
      const found = await listGuards(deps.pool, {
        ...(service === undefined ? {} : { service }),
        ...(all === "true" ? {} : { activeAt: deps.clock.now().toISOString() }),
      });
      return paginate(found, (g) => [g.at, g.id], ["desc", "asc"], request.query);
    },
  );

  app.post(
    "/guards/:service/clear",
    {
      config: { role: "approver" },
      schema: {
        ...SECURED,
        summary: "Clear the service's failed release guards after triage (its gate may pass again)",
        params: GuardParams,
        body: ReasonBody,
        response: { 200: Cleared, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service } = request.params;
      if (!deps.catalog.services.some((s) => s.name === service)) {
        throw new ApiError("not_found", `no service ${service} in the catalog`, [
          { in: "params", path: "service", message: "unknown service" },
        ]);
      }
      return runCommand(
        deps.sendCommand,
        "guard.clear",
        {
          service,
          actor: principalOf(request).name,
          reason: request.body.reason,
        },
        { in: "params", path: "service" },
      );
    },
  );
  done();
};
