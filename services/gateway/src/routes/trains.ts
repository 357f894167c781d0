import { ReleaseTrainDocument, ResourceName, TrainView } from "@safedeploy/schema";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ERROR_RESPONSES } from "../errors.js";
import { principalOf } from "../plugins/auth.js";
import { redactHookHeaders } from "../redact.js";
import { IdParams, listOf } from "../schemas.js";

const SECURED = { tags: ["trains"], security: [{ bearer: [] }] };

/** A train to start: a ReleaseTrain document or the name of one in the catalog. */
const StartBody = z.object({
  train: z.union([ResourceName, ReleaseTrainDocument]),
  dryRun: z.boolean().default(false),
  /** Which check outcomes halt the train: `fatal` (the default) or `warning` (warnings too). */
  haltOn: z.enum(["fatal", "warning"]).optional(),
});

/**
 * Release trains, from the release-train service (its `trains` bucket is the record): the most
 * recent, one with its steps, evidence and manifest, and starting one as the token's name (who
 * thereby approves its promotions).
 */
export const trainRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/trains",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Release trains, newest first",
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
        response: { 200: listOf(TrainView), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { items } = await runCommand(deps.sendCommand, "train.list", {
        limit: request.query.limit,
      });
      return { items: items.map(redactHookHeaders), next: null };
    },
  );

  app.get(
    "/trains/:id",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "One release train: steps, guard evidence, follow-ups, revert and manifest",
        params: IdParams,
        response: { 200: TrainView, ...ERROR_RESPONSES },
      },
    },
    async (request) =>
      redactHookHeaders(
        await runCommand(
          deps.sendCommand,
          "train.status",
          { trainId: request.params.id },
          { in: "params", path: "id" },
        ),
      ),
  );

  app.post(
    "/trains",
    {
      config: { role: "approver" },
      schema: {
        ...SECURED,
        summary: "Start a release train (dryRun: plan, checks and diffs, nothing pushed)",
        body: StartBody,
        response: { 201: TrainView, 409: ERROR_RESPONSES[400], ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const started = await runCommand(
        deps.sendCommand,
        "train.start",
        {
          train: request.body.train,
          dryRun: request.body.dryRun,
          ...(request.body.haltOn === undefined ? {} : { haltOn: request.body.haltOn }),
          actor: principalOf(request).name,
        },
        { in: "body", path: "train" },
      );
      return reply.code(201).send(redactHookHeaders(started));
    },
  );
  done();
};
