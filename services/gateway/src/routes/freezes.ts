import { listFreezes } from "@safedeploy/audit";
import { COMMANDS, ResourceName, Timestamp } from "@safedeploy/schema";
import { z } from "zod";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { paginate } from "../pagination.js";
import { principalOf } from "../plugins/auth.js";
import { Freeze, FreezeBody, FreezeParams, LiftBody, Lifted, Page, listOf } from "../schemas.js";

const SECURED = { tags: ["freezes"], security: [{ bearer: [] }] };

/** An emergency override of a service's recurring freeze windows. */
const OverrideBody = z.object({
  service: ResourceName,
  /** At most 24h ahead. */
  until: Timestamp,
  reason: z.string().trim().min(1, { message: "a reason is required" }).max(2000),
});
const Override = COMMANDS["freeze.override"].result.meta({ id: "FreezeOverride" });

/** Manual freeze windows: the ones in force, open one, lift a service's. */
export const freezeRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const requireService = (name: string, where: "body" | "params", path: string) => {
    if (!deps.catalog.services.some((s) => s.name === name)) {
      throw new ApiError("not_found", `no service ${name} in the catalog`, [
        { in: where, path, message: "unknown service" },
      ]);
    }
  };

  app.get(
    "/freezes",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Freeze windows in force now, newest first",
        querystring: Page.extend({ service: ResourceName.optional() }),
        response: { 200: listOf(Freeze), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service } = request.query;
      const found = await listFreezes(deps.pool, {
        ...(service === undefined ? {} : { service }),
        activeAt: deps.clock.now().toISOString(),
      });
      return paginate(found, (f) => [f.from, f.id], ["desc", "asc"], request.query);
    },
  );

  app.post(
    "/freezes",
    {
      config: { role: "admin" },
      schema: {
        ...SECURED,
        summary: "Open a manual freeze window",
        body: FreezeBody,
        response: { 201: Freeze, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { service, until, reason, from } = request.body;
      requireService(service, "body", "service");
      const freeze = await runCommand(
        deps.sendCommand,
        "freeze.create",
        {
          service,
          until,
          reason,
          actor: principalOf(request).name,
          ...(from === undefined ? {} : { from }),
        },
        { in: "body", path: "service" },
      );
      return reply.code(201).send(freeze);
    },
  );

  app.post(
    "/freezes/overrides",
    {
      config: { role: "admin" },
      schema: {
        ...SECURED,
        summary: "Override a service's recurring freeze windows until a time (emergency, recorded)",
        body: OverrideBody,
        response: { 201: Override, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { service, until, reason } = request.body;
      requireService(service, "body", "service");
      const override = await runCommand(
        deps.sendCommand,
        "freeze.override",
        { service, until, reason, actor: principalOf(request).name },
        { in: "body", path: "until" },
      );
      return reply.code(201).send(override);
    },
  );

  app.delete(
    "/freezes/:service",
    {
      config: { role: "admin" },
      schema: {
        ...SECURED,
        summary: "Lift the service's freezes (the body's reason is optional)",
        params: FreezeParams,
        body: LiftBody,
        response: { 200: Lifted, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service } = request.params;
      requireService(service, "params", "service");
      const principal = principalOf(request);
      return runCommand(
        deps.sendCommand,
        "freeze.lift",
        {
          service,
          actor: principal.name,
          reason: request.body?.reason ?? `lifted through the API by ${principal.name}`,
        },
        { in: "params", path: "service" },
      );
    },
  );
  done();
};
