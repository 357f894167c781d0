import { listDeadLetters } from "@safedeploy/audit";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { GatewayDeps } from "../deps.js";
import { ERROR_RESPONSES } from "../errors.js";
import { keysetOf, paginate } from "../pagination.js";
import { DeadLetterItem, DeadLetterQuery, listOf } from "../schemas.js";

/** Sequences as sort keys compare as strings: padded, so "9" does not sort after "10". */
const seqKey = (seq: number) => String(seq).padStart(20, "0");

/** Dead letters: what the services could not handle, with why, newest first. */
export const deadLetterRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  app.get(
    "/deadletters",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["system"],
        security: [{ bearer: [] }],
        summary:
          "Messages the services could not handle (invalid, terminal or retried out), newest first",
        description:
          "Each carries the reason, the stream, consumer and subject it came from, its delivery count, " +
          "headers and payload. `stream` keeps those consumed from one stream.",
        querystring: DeadLetterQuery,
        response: { 200: listOf(DeadLetterItem), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { stream } = request.query;
      const keyset = keysetOf(request.query, { parts: 1, first: "sequence" });
      const before = keyset.after?.[0];
      const found = await listDeadLetters(deps.pool, stream === undefined ? {} : { stream }, {
        limit: keyset.limit,
        ...(before === undefined ? {} : { before: Number(before) }),
      });
      return paginate(found, (d) => [seqKey(d.seq)], ["desc"], request.query);
    },
  );
  done();
};
