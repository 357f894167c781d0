import Fastify, { LogController } from "fastify";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { GatewayDeps } from "./deps.js";
import { requireTokens } from "./plugins/auth.js";
import { documentApi } from "./plugins/docs.js";
import { installErrorHandling } from "./plugins/errors.js";
import { HttpMetrics, measureRequests } from "./plugins/metrics.js";
import { secure } from "./plugins/security.js";
import { dashboardAssetsDir, dashboardRoutes } from "./routes/dashboard.js";
import { eventMetrics, eventRoutes, feedHub } from "./routes/events.js";
import { freezeRoutes } from "./routes/freezes.js";
import { guardRoutes } from "./routes/guards.js";
import { healthRoutes } from "./routes/health.js";
import { historyRoutes } from "./routes/history.js";
import { deadLetterRoutes } from "./routes/dead-letters.js";
import { deployRoutes } from "./routes/deploys.js";
import { doraRoutes } from "./routes/dora.js";
import { flaggerRoutes } from "./routes/flagger.js";
import { incidentRoutes } from "./routes/incidents.js";
import { proposalRoutes } from "./routes/proposals.js";
import { serviceRoutes } from "./routes/services.js";
import { slackRoutes } from "./routes/slack.js";
import { systemRoutes } from "./routes/system.js";
import { trainRoutes } from "./routes/trains.js";

/** Requests per minute per token (or address) when `GATEWAY_RATE_LIMIT` is not set. */
export const DEFAULT_RATE_LIMIT = 600;

/**
 * The gateway as a Fastify plugin: error handling, security headers, rate limit, metrics, the
 * OpenAPI document and docs page, health routes, the dashboard, and the `/v1` API behind tokens.
 */
export const gatewayApp: FastifyPluginAsync<{ deps: GatewayDeps }> = async (app, { deps }) => {
  const metrics = new HttpMetrics();
  const hub = feedHub(deps, (error) => {
    app.log.warn({ err: error }, "events: reading the audit log failed; streams wait and catch up");
  });
  installErrorHandling(app);
  measureRequests(app, metrics);
  await secure(app, {
    tokens: deps.tokens,
    perMinute: deps.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT,
  });
  await documentApi(app);
  await app.register(healthRoutes, { deps, metrics, moreMetrics: () => eventMetrics(hub) });
  await app.register(slackRoutes, { deps });
  await app.register(dashboardRoutes, {
    dir: deps.dashboardDir === undefined ? dashboardAssetsDir() : deps.dashboardDir,
  });
  await app.register(
    async (v1) => {
      requireTokens(v1, deps.tokens);
      await v1.register(serviceRoutes, { deps });
      await v1.register(incidentRoutes, { deps });
      await v1.register(proposalRoutes, { deps });
      await v1.register(freezeRoutes, { deps });
      await v1.register(guardRoutes, { deps });
      await v1.register(systemRoutes, { deps });
      await v1.register(deadLetterRoutes, { deps });
      await v1.register(eventRoutes, { deps, hub });
      await v1.register(trainRoutes, { deps });
      await v1.register(deployRoutes, { deps });
      await v1.register(flaggerRoutes, { deps });
      await v1.register(doraRoutes, { deps });
      await v1.register(historyRoutes, { deps });
    },
    { prefix: "/v1" },
  );
};

/** A gateway over `deps`, ready for `inject` or `listen`. */
export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger === undefined ? { logger: false } : { loggerInstance: deps.logger }),
    // Requests are logged by the metrics hook without their query (it may carry a token).
    logController: new LogController({ disableRequestLogging: true }),
    // Long path parameters reach the routes' schemas (a 400 naming the field), not a bare 404.
    routerOptions: { maxParamLength: 2_000 },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(gatewayApp, { deps });
  await app.ready();
  return app;
}
