import { GateView, ResourceName } from "@safedeploy/schema";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { bearerToken } from "../plugins/auth.js";

const SECURED = { tags: ["services"], security: [{ bearer: [] }] };

/**
 * What Flagger posts to a webhook (`confirm-rollout`, `confirm-promotion`, `pre-rollout`, …):
 * the Canary's name and namespace, its phase, and the webhook's `metadata` (string values).
 * `metadata.service` names the SafeDeploy service when it differs from the Canary's name.
 */
export const FlaggerHook = z.object({
  name: z.string().min(1).max(253),
  namespace: z.string().min(1).max(253),
  phase: z.string().max(64).optional(),
  checksum: z.string().max(256).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
});

const FlaggerAnswer = z.object({
  service: z.string(),
  allowed: z.boolean(),
  verdict: z.enum(["pass", "block", "unknown"]),
  /** One line Flagger writes to its log and events. */
  message: z.string(),
  reasons: GateView.shape.reasons,
  /** What blocks, in the API's error-detail shape: the field or the gate reason. */
  details: z.array(z.object({ in: z.string(), path: z.string(), message: z.string() })),
});
type Detail = z.infer<typeof FlaggerAnswer>["details"][number];

/**
 * The gate as a Flagger webhook: 200 only for `pass`; 403 for `block`, `unknown`, an unknown
 * service or a policy service that does not answer (fail closed: Flagger then halts, and retries
 * on its next interval). Flagger webhooks cannot send headers, so besides `Authorization` the
 * token may come as `?access_token=` (use a viewer token).
 */
export const flaggerRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const declared = new Set(deps.catalog.services.map((s) => s.name));

  app.post(
    "/flagger/gate",
    {
      schema: {
        ...SECURED,
        summary: "The promotion gate as a Flagger webhook: 200 for pass, 403 for block or unknown",
        querystring: z.object({ access_token: z.string().optional() }),
        body: FlaggerHook,
        response: { ...ERROR_RESPONSES, 200: FlaggerAnswer, 403: FlaggerAnswer },
      },
    },
    async (request, reply) => {
      const token = bearerToken(request) ?? request.query.access_token ?? null;
      if (deps.tokens === null || token === null || deps.tokens.authenticate(token) === null) {
        throw new ApiError(
          "unauthorized",
          "a known token is required (Authorization or access_token)",
        );
      }
      const hook = request.body;
      const service = hook.metadata?.service ?? hook.name;
      const field = hook.metadata?.service === undefined ? "name" : "metadata.service";
      const block = (
        verdict: "block" | "unknown",
        message: string,
        reasons: z.infer<typeof FlaggerAnswer>["reasons"],
        details: Detail[],
      ) => reply.code(403).send({ service, allowed: false, verdict, message, reasons, details });
      if (!ResourceName.safeParse(service).success || !declared.has(service)) {
        const message = `no service ${service} in the SafeDeploy catalog: promotion blocked`;
        return block("unknown", message, [], [{ in: "body", path: field, message }]);
      }
      let gate;
      try {
        gate = await runCommand(deps.sendCommand, "gate.query", { service });
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== "unavailable") throw error;
        const message = `${error.message}: promotion blocked until it answers`;
        return block("unknown", message, [], [{ in: "gate", path: "policy", message }]);
      }
      const message = `${service} ${gate.verdict}: ${gate.reasons.map((r) => `${r.code}: ${r.message}`).join("; ") || "no reasons"}`;
      const details = gate.reasons.map((r) => ({ in: "gate", path: r.code, message: r.message }));
      if (gate.verdict !== "pass") return block(gate.verdict, message, gate.reasons, details);
      return reply.code(200).send({
        service,
        allowed: true,
        verdict: "pass",
        message,
        reasons: gate.reasons,
        details: [],
      });
    },
  );
  done();
};
