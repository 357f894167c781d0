import { getProposal, listProposals } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ERROR_RESPONSES } from "../errors.js";
import { keysetOf, paginate } from "../pagination.js";
import { principalOf } from "../plugins/auth.js";
import { IdParams, Proposal, ProposalQuery, ReasonBody, listOf } from "../schemas.js";

const SECURED = { tags: ["proposals"], security: [{ bearer: [] }] };

/** Proposals: list, one with approvals and action, approve and reject as the token's name. */
export const proposalRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/proposals",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "Proposals, newest first",
        querystring: ProposalQuery,
        response: { 200: listOf(Proposal), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { service, state } = request.query;
      const found = await listProposals(
        deps.pool,
        {
          ...(service === undefined ? {} : { service }),
          ...(state === undefined ? {} : { state }),
        },
        keysetOf(request.query, { parts: 2, first: "instant" }),
      );
      return paginate(found, (p) => [p.createdAt, p.id], ["desc", "asc"], request.query);
    },
  );

  app.get(
    "/proposals/:id",
    {
      config: { role: "viewer" },
      schema: {
        ...SECURED,
        summary: "One proposal with its approvals and action result (branch, commit, PR, diff)",
        params: IdParams,
        response: { 200: Proposal, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const proposal = await getProposal(deps.pool, request.params.id);
      if (proposal === null) {
        throw new ApiError("not_found", `no proposal ${request.params.id}`, [
          { in: "params", path: "id", message: "unknown proposal" },
        ]);
      }
      return proposal;
    },
  );

  for (const verb of ["approve", "reject"] as const) {
    app.post(
      `/proposals/:id/${verb}`,
      {
        config: { role: "approver" },
        schema: {
          ...SECURED,
          summary:
            verb === "approve"
              ? "Approve a proposal; approving again returns it unchanged (409 when rejected)"
              : "Reject a proposal",
          params: IdParams,
          body: ReasonBody,
          response: { 200: Proposal, 409: ERROR_RESPONSES[400], ...ERROR_RESPONSES },
        },
      },
      async (request) =>
        runCommand(
          deps.sendCommand,
          `proposal.${verb}`,
          {
            proposalId: request.params.id,
            by: principalOf(request).name,
            reason: request.body.reason,
          },
          { in: "params", path: "id" },
        ),
    );
  }
  done();
};
