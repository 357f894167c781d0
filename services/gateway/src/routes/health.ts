import { checkDatabase } from "@safedeploy/db";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { GatewayDeps } from "../deps.js";
import type { HttpMetrics } from "../plugins/metrics.js";

const Checks = z.object({
  status: z.enum(["ok", "unavailable"]),
  checks: z.record(z.string(), z.string()),
});

/** `/healthz`, `/readyz` (PostgreSQL and NATS), `/metrics`, `/openapi.json`: no token needed. */
export const healthRoutes: FastifyPluginCallbackZod<{
  deps: GatewayDeps;
  metrics: HttpMetrics;
  /** The gateway's own gauges and counters beyond requests (event streams). */
  moreMetrics: () => string;
}> = (app, { deps, metrics, moreMetrics }, done) => {
  const open = { rateLimit: false } as const;

  app.get(
    "/healthz",
    {
      config: open,
      schema: {
        tags: ["health"],
        summary: "Liveness",
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
    },
    (_request, reply) => {
      void reply.send({ status: "ok" as const });
    },
  );

  app.get(
    "/readyz",
    {
      config: open,
      schema: {
        tags: ["health"],
        summary: "Readiness: PostgreSQL and NATS answer",
        response: { 200: Checks, 503: Checks },
      },
    },
    async (request, reply) => {
      const checks: Record<string, () => Promise<void>> = {
        postgres: () => checkDatabase(deps.pool, { signal: AbortSignal.timeout(2_000) }),
        ...deps.readiness,
      };
      const results = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await check();
            return [name, "ok"] as const;
          } catch (error) {
            request.log.warn({ check: name, err: error }, "not ready");
            return [name, "unavailable"] as const;
          }
        }),
      );
      const ready = results.every(([, result]) => result === "ok");
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? "ok" : "unavailable", checks: Object.fromEntries(results) });
    },
  );

  app.get(
    "/metrics",
    {
      config: open,
      schema: {
        tags: ["health"],
        summary: "Prometheus text: requests and latency by route",
        response: { 200: z.string() },
      },
    },
    async (_request, reply) => {
      const extra = deps.extraMetrics === undefined ? "" : await deps.extraMetrics();
      return reply
        .type("text/plain; version=0.0.4; charset=utf-8")
        .send(metrics.text() + moreMetrics() + extra);
    },
  );

  app.get(
    "/openapi.json",
    {
      config: open,
      schema: { hide: true },
    },
    (_request, reply) => {
      void reply.send(app.swagger());
    },
  );
  done();
};
