import { readFile } from "node:fs/promises";
import { parseInteraction, postOnce, slackOutcome, verifySlackRequest } from "@safedeploy/notify";
import type { Fetch, SlackDecision } from "@safedeploy/notify";
import type { CommandResult } from "@safedeploy/schema";
import type { FastifyBaseLogger, FastifyRequest } from "fastify";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { parse } from "yaml";
import { z } from "zod";
import { runCommand } from "../commands.js";
import type { GatewayDeps } from "../deps.js";
import { ApiError, ErrorBody } from "../errors.js";
import { ROLES, roleAllows } from "../tokens.js";
import type { Principal } from "../tokens.js";

/** Slack's own host: where `response_url`s point in production. */
export const SLACK_RESPONSE_ORIGIN = "https://hooks.slack.com";

/** What the interactivity endpoint needs: the signing secret, the user map, where to answer. */
export interface SlackIntegration {
  readonly signingSecret: string;
  /** The SafeDeploy person of a Slack user id, or null when the user is not linked. */
  readonly users: (slackUserId: string) => Principal | null;
  /** Origins a `response_url` may point to; default {@link SLACK_RESPONSE_ORIGIN} only. */
  readonly responseOrigins?: readonly string[];
  readonly fetch?: Fetch;
}

const SlackUser = z.strictObject({
  slackUserId: z.string().regex(/^[UW][A-Z0-9]{2,20}$/, { message: "must be a Slack user id" }),
  name: z.string().trim().min(1, { message: "a name is required" }).max(200),
  role: z.enum(ROLES, { message: `must be one of ${ROLES.join(", ")}` }),
});

/**
 * Parses the Slack users file (YAML list of `{slackUserId, name, role}`, roles as for tokens)
 * into a lookup; throws naming the entry and field of every problem.
 */
export function parseSlackUsers(
  text: string,
  file = "Slack users file",
): SlackIntegration["users"] {
  const parsed = z.array(SlackUser).safeParse(parse(text) ?? []);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) =>
        `  entry ${String(Number(issue.path[0] ?? 0) + 1)} field ${String(issue.path[1] ?? "")}: ${issue.message}`,
    );
    throw new Error(`${file} is invalid:\n${problems.join("\n")}`);
  }
  const byId = new Map<string, Principal>();
  for (const entry of parsed.data) {
    if (byId.has(entry.slackUserId)) {
      throw new Error(`${file} is invalid:\n  ${entry.slackUserId} appears twice`);
    }
    byId.set(entry.slackUserId, { name: entry.name, role: entry.role });
  }
  return (id) => byId.get(id) ?? null;
}

/**
 * The Slack integration from `SAFEDEPLOY_SLACK_SIGNING_SECRET_FILE` and `SAFEDEPLOY_SLACK_USERS`
 * (both or neither), `SAFEDEPLOY_SLACK_RESPONSE_ORIGINS` optional; undefined when not configured.
 */
export async function slackFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Promise<SlackIntegration | undefined> {
  const secretFile = env.SAFEDEPLOY_SLACK_SIGNING_SECRET_FILE;
  const usersFile = env.SAFEDEPLOY_SLACK_USERS;
  if ((secretFile ?? "") === "" && (usersFile ?? "") === "") return undefined;
  if ((secretFile ?? "") === "" || (usersFile ?? "") === "") {
    throw new Error("SAFEDEPLOY_SLACK_SIGNING_SECRET_FILE and SAFEDEPLOY_SLACK_USERS go together");
  }
  // The operator names these files; reading them is the point.
  // eslint-disable-next-line security/detect-non-literal-fs-filename
  const signingSecret = (await readFile(secretFile ?? "", "utf8")).trim();
  // eslint-disable-next-line security/detect-non-literal-fs-filename
  const users = parseSlackUsers(await readFile(usersFile ?? "", "utf8"), usersFile);
  const origins = env.SAFEDEPLOY_SLACK_RESPONSE_ORIGINS;
  return {
    signingSecret,
    users,
    ...(origins === undefined || origins === ""
      ? {}
      : { responseOrigins: origins.split(",").map((o) => new URL(o.trim()).origin) }),
  };
}

function outcomeText(
  decision: SlackDecision,
  who: Principal,
  proposal: CommandResult<"proposal.approve">,
  required: number,
): string {
  const verb = decision.verb === "approve" ? "Approved" : "Rejected";
  const count = `${proposal.approvals.length} of ${proposal.required ?? required} approvals`;
  return `${verb} by ${who.name} from Slack: ${proposal.id} is ${proposal.state} (${count})`;
}

/** Posts to `response_url` only on an allowed origin; never follows a redirect. */
async function postToSlack(
  slack: SlackIntegration,
  url: string,
  message: Record<string, unknown>,
  log: FastifyBaseLogger,
): Promise<void> {
  const origin = new URL(url).origin;
  if (!(slack.responseOrigins ?? [SLACK_RESPONSE_ORIGIN]).includes(origin)) {
    log.warn({ origin }, "slack: response_url on another origin, not posted");
    return;
  }
  const outcome = await postOnce(slack.fetch ?? fetch, url, {
    headers: {},
    body: JSON.stringify(message),
    timeoutMs: 5_000,
  });
  if (outcome.kind !== "delivered") {
    log.warn({ error: outcome.error }, "slack: response_url update failed");
  }
}

/**
 * Answers through `response_url` after the HTTP answer (Slack wants that within 3 s); a failure
 * is logged, never thrown.
 */
function answerSlack(
  slack: SlackIntegration,
  decision: SlackDecision,
  message: Record<string, unknown>,
  log: FastifyBaseLogger,
): void {
  if (decision.responseUrl === null) return;
  postToSlack(slack, decision.responseUrl, message, log).catch((error: unknown) => {
    log.warn({ err: error }, "slack: response_url update failed");
  });
}

/** Only to the person who pressed the button; the channel's message stays as it is. */
const ephemeral = (text: string) => ({
  replace_original: false,
  response_type: "ephemeral",
  text,
});

/** Whether Slack signed this request: 401 (no body) when it did not. */
function verified(deps: GatewayDeps, slack: SlackIntegration, request: FastifyRequest): boolean {
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === "string" ? value : undefined;
  };
  const result = verifySlackRequest({
    signingSecret: slack.signingSecret,
    timestamp: header("x-slack-request-timestamp"),
    signature: header("x-slack-signature"),
    rawBody: typeof request.body === "string" ? request.body : "",
    nowSeconds: Math.floor(deps.clock.now().getTime() / 1000),
  });
  if (!result.ok) request.log.warn({ reason: result.reason }, "slack: request signature refused");
  return result.ok;
}

/** The decision of a verified request, or a 400 naming the field. */
function decisionOf(request: FastifyRequest): SlackDecision {
  const parsed = parseInteraction(typeof request.body === "string" ? request.body : "");
  if (!parsed.ok) {
    throw new ApiError("invalid_request", `${parsed.field} ${parsed.message}`, [
      { in: "body", path: parsed.field, message: parsed.message },
    ]);
  }
  return parsed.decision;
}

/** The SafeDeploy person who pressed the button, who must be at least an approver; else 403. */
function approverOf(
  slack: SlackIntegration,
  decision: SlackDecision,
  log: FastifyBaseLogger,
): Principal {
  const who = slack.users(decision.slackUserId);
  if (who !== null && roleAllows(who.role, "approver")) return who;
  const why =
    who === null
      ? "is not linked to a SafeDeploy identity"
      : `is ${who.role}, approving needs approver`;
  answerSlack(slack, decision, ephemeral(`Refused: your Slack user ${why}.`), log);
  throw new ApiError("forbidden", `Slack user ${decision.slackUserId} ${why}`);
}

/** Approves or rejects as `who`, through the same command as the API. */
async function decide(
  deps: GatewayDeps,
  slack: SlackIntegration,
  decision: SlackDecision,
  who: Principal,
  log: FastifyBaseLogger,
): Promise<CommandResult<"proposal.approve">> {
  try {
    return await runCommand(deps.sendCommand, `proposal.${decision.verb}`, {
      proposalId: decision.proposalId,
      by: who.name,
      reason: `${decision.verb === "approve" ? "approved" : "rejected"} from Slack`,
    });
  } catch (error) {
    const message = error instanceof ApiError ? error.message : "the command failed";
    answerSlack(
      slack,
      decision,
      ephemeral(`Could not ${decision.verb} ${decision.proposalId}: ${message}`),
      log,
    );
    throw error;
  }
}

const Answer = z.object({ ok: z.boolean(), proposal: z.string(), state: z.string() });

/**
 * `POST /slack/interactivity`: Slack's Approve / Reject. Verifies `X-Slack-Signature` over the
 * raw body (5-minute window, constant-time), maps the Slack user to a SafeDeploy person (unknown
 * users and roles below approver refused), approves or rejects as that person through the same
 * command as the API (so `approvals.required` and distinct approvers apply), then updates the
 * message through `response_url`.
 */
export const slackRoutes: FastifyPluginCallbackZod<{ deps: GatewayDeps }> = (
  app,
  { deps },
  done,
) => {
  // Scoped to this plugin: the signature is over the raw bytes, so the form stays a string here.
  // A payload carries the whole message (up to 50 blocks of 3000 characters), hence the limit.
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 512 * 1024 },
    (_request, body, parsed) => {
      parsed(null, body);
    },
  );
  app.post(
    "/slack/interactivity",
    {
      schema: {
        tags: ["slack"],
        summary: "Slack interactivity: Approve / Reject buttons (Slack-signed)",
        response: {
          200: Answer,
          400: ErrorBody,
          401: z.undefined().describe("no body: the request is not signed by Slack"),
          403: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const slack = deps.slack;
      if (slack === undefined) throw new ApiError("not_found", "Slack is not configured");
      // Slack documents no body for a refused signature.
      if (!verified(deps, slack, request)) return reply.code(401).send();
      const decision = decisionOf(request);
      const who = approverOf(slack, decision, request.log);
      const proposal = await decide(deps, slack, decision, who, request.log);
      const service = deps.catalog.services.find((s) => s.name === proposal.service);
      const text = outcomeText(decision, who, proposal, service?.policy.approvals.required ?? 1);
      answerSlack(slack, decision, { ...slackOutcome(decision.blocks, { text }) }, request.log);
      return { ok: true, proposal: proposal.id, state: proposal.state };
    },
  );
  done();
};
