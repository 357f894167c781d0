import { getIncident, getService, listFreezes, listGuards, listServices } from "@safedeploy/audit";
import type { ServiceState } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { z } from "zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { keysetOf, paginate } from "../pagination.js";
import { redactHookHeaders } from "../redact.js";
import { Gate, Page, ServiceDetail, ServiceParams, ServiceSummary, listOf } from "../schemas.js";

const VIEWER = { role: "viewer" } as const;
const SECURED = { tags: ["services"], security: [{ bearer: [] }] };

/** Services: the catalog's, with what the read model knows of each, and the promotion gate. */
export const serviceRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  const declared = new Map(deps.catalog.services.map((s) => [s.name, s]));
  // The catalog's names in page order, to merge with a page of the read model's.
  const catalogNames = [...declared.keys()].sort();

  /**
   * The candidates of one page: the first `limit + 1` names after the cursor of the catalog and of
   * the read model (a service can be in either or both), which hold the first `limit + 1` of their
   * union; paginate picks the page from them.
   */
  const candidates = async (page: {
    limit: number;
    cursor?: string | undefined;
  }): Promise<z.infer<typeof ServiceSummary>[]> => {
    const keyset = keysetOf(page, { parts: 1, first: "name" });
    const after = keyset.after?.[0];
    const states = new Map((await listServices(deps.pool, keyset)).map((s) => [s.name, s]));
    let from = 0;
    if (after !== undefined) {
      let to = catalogNames.length;
      while (from < to) {
        const middle = (from + to) >>> 1;
        if ((catalogNames[middle] ?? "") > after) to = middle;
        else from = middle + 1;
      }
    }
    const names = new Set([...catalogNames.slice(from, from + keyset.limit), ...states.keys()]);
    return [...names].map((name) => summary(name, states.get(name)));
  };
  const summary = (name: string, state: ServiceState | undefined) => {
    const service = declared.get(name);
    return {
      name,
      owner: service?.owner ?? null,
      inCatalog: service !== undefined,
      severity: state?.severity ?? null,
      budgetRemaining: state?.budgetRemaining ?? null,
      slos: [...(state?.slos ?? [])],
      activeIncident: state?.activeIncident ?? null,
      gate: state?.gate == null ? null : { ...state.gate, reasons: [...state.gate.reasons] },
    };
  };
  const requireService = (name: string) => {
    if (!declared.has(name)) {
      throw new ApiError("not_found", `no service ${name} in the catalog`, [
        { in: "params", path: "name", message: "unknown service" },
      ]);
    }
  };

  app.get(
    "/services",
    {
      config: VIEWER,
      schema: {
        ...SECURED,
        summary: "Services with budget, severity, active incident and last gate verdict",
        querystring: Page,
        response: { 200: listOf(ServiceSummary), ...ERROR_RESPONSES },
      },
    },
    async (request) =>
      paginate(await candidates(request.query), (s) => [s.name], ["asc"], request.query),
  );

  app.get(
    "/services/:name",
    {
      config: VIEWER,
      schema: {
        ...SECURED,
        summary: "One service: spec, SLO and budget state per SLO, incident, freezes, guards, gate",
        params: ServiceParams,
        response: { 200: ServiceDetail, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { name } = request.params;
      const service = declared.get(name);
      const state = (await getService(deps.pool, name)) ?? undefined;
      if (service === undefined && state === undefined) requireService(name);
      const now = deps.clock.now().toISOString();
      const [incident, freezes, guards, gate] = await Promise.all([
        state?.activeIncident == null
          ? Promise.resolve(null)
          : getIncident(deps.pool, state.activeIncident),
        listFreezes(deps.pool, { service: name, activeAt: now }),
        listGuards(deps.pool, { service: name, activeAt: now }),
        service === undefined
          ? Promise.resolve(null)
          : runCommand(deps.sendCommand, "gate.query", { service: name }).then(
              (live) => ({ ...live, live: true }),
              (error: unknown) => {
                if (!(error instanceof ApiError) || error.code !== "unavailable") throw error;
                request.log.warn({ service: name }, "policy did not answer; last verdict shown");
                return state?.gate == null
                  ? null
                  : {
                      ...state.gate,
                      reasons: [...state.gate.reasons],
                      service: name,
                      live: false,
                    };
              },
            ),
      ]);
      return {
        ...summary(name, state),
        // Hook headers carry secrets (tokens, API keys): a viewer sees their names only.
        spec: service === undefined ? null : redactHookHeaders({ ...service.spec }),
        policy: service === undefined ? null : redactHookHeaders({ ...service.policy }),
        incident: incident === null ? null : { ...incident },
        freezes: [...freezes],
        guards: [...guards],
        gate,
      };
    },
  );

  app.get(
    "/services/:name/gate",
    {
      config: VIEWER,
      schema: {
        ...SECURED,
        summary: "May the service be promoted now? Always 200 for a known service",
        description:
          'Asks the policy service: `verdict` is `pass`, `block` or `unknown` (no data, stale evidence, failed queries); `allowed` is true exactly for `pass`. Usable as an Argo Rollouts `web` metric provider with `jsonPath: "{$}"`, `successCondition: result.verdict == "pass"` and `failureCondition: result.verdict == "block"`, so `unknown` is Inconclusive (`safedeploy generate argo-analysis`).',
        params: ServiceParams,
        response: { 200: Gate, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      requireService(request.params.name);
      return runCommand(deps.sendCommand, "gate.query", { service: request.params.name });
    },
  );
  done();
};
