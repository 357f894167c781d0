import { getIncident, listProposals } from "@safedeploy/audit";
import {
  canaryStepOf,
  deployBeforeBurn,
  describeDeployBeforeBurn,
  serviceOfApp,
} from "@safedeploy/core";
import { CanaryView, DeployRecord, EVENT_DATA, ResourceName, Timestamp } from "@safedeploy/schema";
import type { FastifyBaseLogger } from "fastify";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { principalOf } from "../plugins/auth.js";
import { IdParams, ServiceParams } from "../schemas.js";

const SECURED = { tags: ["deploys"], security: [{ bearer: [] }] };
const DATA = EVENT_DATA["governance.deploy-recorded"].shape;

/** A time as a template renders it; normalised so stored times sort as strings. */
const Instant = Timestamp.transform((at) => new Date(at).toISOString());
/** Argo CD renders an unknown commit date as an empty string. */
const OptionalInstant = z
  .preprocess((v) => (v === "" ? null : v), Instant.nullable())
  .default(null);

/**
 * What Argo CD / Argo Rollouts notification templates (deploy/argo/) and other tools post. Lengths
 * are bounded so the dedup identity stays a valid message id.
 */
export const DeployBody = z.object({
  reporter: DATA.reporter.default("api"),
  app: z
    .string()
    .regex(/^[a-z0-9][-a-z0-9.]*$/, "must be a DNS name")
    .max(63),
  revision: z.string().trim().min(1).max(120),
  trigger: DATA.trigger,
  step: z.number().int().nonnegative().nullable().default(null),
  at: Instant,
  commitTime: OptionalInstant,
  /** The canary weight of a completed setWeight step (Argo Rollouts), when there is one. */
  weight: z.number().int().min(0).max(100).nullable().default(null),
  details: z.record(z.string(), z.unknown()).default({}),
});

const Recorded = z.object({
  id: z.string(),
  service: ResourceName,
  recorded: z.boolean(),
  deploy: DeployRecord,
  /** The canary step the event started, or why it started none. */
  canary: z.object({ started: z.boolean(), reason: z.string(), step: CanaryView.nullable() }),
});

const CanaryBody = z
  .object({
    step: z.number().int().min(1).max(100).optional(),
    weight: z.number().int().min(0).max(100).optional(),
    since: Instant.optional(),
    reason: z.string().trim().min(1).max(2_000).default("canary step reported"),
  })
  .refine((b) => (b.step === undefined) !== (b.weight === undefined), {
    message: "give exactly one of step (1-based, of the catalog's canary.steps) or weight",
    path: ["step"],
  });

const IncidentDeploy = z.object({
  incidentId: z.string(),
  service: ResourceName,
  burnBegan: Timestamp,
  deploy: DeployRecord.nullable(),
  summary: z.string().nullable(),
});

/** Deploy events in (Argo CD, Argo Rollouts, any tool), canary steps, and deploys by incident. */
export const deployRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const services = new Map(deps.catalog.services.map((s) => [s.name, s]));
  const canaryOf = (name: string) => {
    const deployment = services.get(name)?.spec.deployment;
    return deployment?.strategy === "canary" ? deployment.canary : undefined;
  };
  const reportStep = (
    service: string,
    weight: number,
    since: string,
    actor: string,
    reason: string,
  ) => runCommand(deps.sendCommand, "canary.step", { service, weight, since, actor, reason });

  app.post(
    "/deploys",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Record a deploy event (deduplicated on app, revision, trigger and step)",
        description:
          "A completed rollout step at a declared canary weight also starts that step's bake (`canary.step`). An app that is no catalog service is refused (404).",
        body: DeployBody,
        response: { 200: Recorded, 201: Recorded, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { weight, ...body } = request.body;
      const service = serviceOfApp(deps.catalog.services, body.app);
      if (service === null) {
        throw new ApiError("not_found", `no service ${body.app} in the catalog`, [
          { in: "body", path: "app", message: "no catalog service of this name" },
        ]);
      }
      const deploy = {
        ...body,
        details: weight === null ? body.details : { ...body.details, weight },
      };
      const result = await runCommand(deps.sendCommand, "deploy.record", { service, deploy });
      const canary = await startCanary(
        request.log,
        service,
        result.deploy,
        principalOf(request).name,
      );
      return reply.code(result.recorded ? 201 : 200).send({ ...result, service, canary });
    },
  );

  /** A repeat also reports its step: `canary.step` is idempotent per weight, and a crash in between is healed. */
  const startCanary = async (
    log: FastifyBaseLogger,
    service: string,
    deploy: z.infer<typeof DeployRecord>,
    actor: string,
  ) => {
    const outcome = canaryStepOf(deploy, canaryOf(service));
    if (outcome.kind === "none") return { started: false, reason: outcome.reason, step: null };
    const reason = `${deploy.reporter} ${deploy.trigger} step ${deploy.step ?? "-"} of ${deploy.revision}`;
    const step = await reportStep(service, outcome.weight, deploy.at, actor, reason);
    log.info({ service, weight: step.weight }, "canary step reported by a deploy event");
    return { started: true, reason: `baking at ${step.weight}% since ${step.since}`, step };
  };

  app.get(
    "/deploys",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "A service's recorded deploy events, oldest first (the newest 100)",
        querystring: z.object({ service: ResourceName }),
        response: { 200: z.object({ items: z.array(DeployRecord) }), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service } = request.query;
      if (!services.has(service)) {
        throw new ApiError("not_found", `no service ${service} in the catalog`, [
          { in: "querystring", path: "service", message: "unknown service" },
        ]);
      }
      return runCommand(deps.sendCommand, "deploy.list", { service });
    },
  );

  app.post(
    "/services/:name/canary",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary:
          "Report that a service entered a canary step: its bake starts (`safedeploy canary report`)",
        params: ServiceParams,
        body: CanaryBody,
        response: { 200: CanaryView, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { name } = request.params;
      const canary = canaryOf(name);
      if (canary === undefined) {
        throw new ApiError(
          services.has(name) ? "invalid_request" : "not_found",
          `${name} declares no canary deployment strategy`,
          [{ in: "params", path: "name", message: "no canary strategy" }],
        );
      }
      const { step, reason, since } = request.body;
      const weight = step === undefined ? request.body.weight : canary.steps[step - 1];
      if (weight === undefined || !canary.steps.includes(weight)) {
        throw new ApiError(
          "invalid_request",
          `not a canary step of ${name} (steps ${canary.steps.join(", ")})`,
          [
            {
              in: "body",
              path: step === undefined ? "weight" : "step",
              message: "not a declared step",
            },
          ],
        );
      }
      const at = since ?? deps.clock.now().toISOString();
      return reportStep(name, weight, at, principalOf(request).name, reason);
    },
  );

  /**
   * When the incident's burn began: its rollback proposal's plan carries it (`burnBegan`); without
   * one, the opening time, at or after the burn's start.
   */
  const burnBeganOf = async (incident: { id: string; service: string; openedAt: string }) => {
    const proposals = await listProposals(deps.pool, { service: incident.service });
    const plan = proposals.find((p) => p.incidentId === incident.id && p.plan.burnBegan)?.plan;
    const parsed = Timestamp.safeParse(plan?.burnBegan);
    return parsed.success ? new Date(parsed.data).toISOString() : incident.openedAt;
  };

  app.get(
    "/incidents/:id/deploy",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "The deploy that was live when the incident's burn began, in a sentence",
        params: IdParams,
        response: { 200: IncidentDeploy, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const incident = await getIncident(deps.pool, request.params.id);
      if (incident === null) {
        throw new ApiError("not_found", `no incident ${request.params.id}`, [
          { in: "params", path: "id", message: "unknown incident" },
        ]);
      }
      const { items } = await runCommand(deps.sendCommand, "deploy.list", {
        service: incident.service,
      });
      const burnBegan = await burnBeganOf(incident);
      const deploy = deployBeforeBurn(items, burnBegan);
      return {
        incidentId: incident.id,
        service: incident.service,
        burnBegan,
        deploy,
        summary:
          deploy === null
            ? null
            : describeDeployBeforeBurn({ ...deploy, service: incident.service }, burnBegan),
      };
    },
  );
  done();
};
