import { snapshot, verifyChain } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { GatewayDeps } from "../deps.js";
import { ERROR_RESPONSES } from "../errors.js";
import { ChainReport, Snapshot } from "../schemas.js";

/** The whole-system snapshot and the audit chain check. */
export const systemRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/snapshot",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["system"],
        security: [{ bearer: [] }],
        summary: "Services, active incidents, open proposals, freezes in force, blocked services",
        response: { 200: Snapshot, ...ERROR_RESPONSES },
      },
    },
    async () => snapshot(deps.pool, { now: deps.clock.now().toISOString() }),
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
