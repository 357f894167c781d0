import { z } from "zod";
import type { SlackBlock } from "./render.js";

/** The part of Slack's `block_actions` payload an approval reads (Slack sends more). */
const BlockActions = z.object({
  type: z.literal("block_actions", { message: "must be block_actions" }),
  user: z.object({ id: z.string().min(1).max(64), name: z.string().max(200).optional() }),
  actions: z
    .array(
      z.object({
        action_id: z.string().max(255),
        block_id: z.string().max(255).optional(),
        value: z.string().max(2_000).optional(),
      }),
    )
    .min(1, { message: "must hold the action" }),
  response_url: z.url({ protocol: /^https?$/, message: "must be an http(s) URL" }).optional(),
  message: z.object({ blocks: z.array(z.record(z.string(), z.unknown())).optional() }).optional(),
});

/** A person pressed Approve or Reject on a proposal's message. */
export interface SlackDecision {
  readonly slackUserId: string;
  readonly verb: "approve" | "reject";
  readonly proposalId: string;
  readonly responseUrl: string | null;
  /** The message as Slack shows it now, to update in place. */
  readonly blocks: readonly SlackBlock[];
}

export type ParsedInteraction =
  | { readonly ok: true; readonly decision: SlackDecision }
  | { readonly ok: false; readonly field: string; readonly message: string };

/**
 * Reads an interactivity request's form body (`payload=` + JSON, as Slack posts it) into the
 * decision it carries. Anything but an Approve or Reject of a proposal is refused, naming the
 * field.
 */
export function parseInteraction(rawBody: string): ParsedInteraction {
  const payload = new URLSearchParams(rawBody).get("payload");
  if (payload === null) return { ok: false, field: "payload", message: "is required" };
  let json: unknown;
  try {
    json = JSON.parse(payload) as unknown;
  } catch {
    return { ok: false, field: "payload", message: "must be JSON" };
  }
  const parsed = BlockActions.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = ["payload", ...(issue?.path ?? []).map(String)].join(".");
    return { ok: false, field, message: issue?.message ?? "is invalid" };
  }
  const action = parsed.data.actions[0];
  if (action === undefined || (action.action_id !== "approve" && action.action_id !== "reject")) {
    return {
      ok: false,
      field: "payload.actions.0.action_id",
      message: "must be approve or reject",
    };
  }
  const proposalId = action.value ?? "";
  if (!/^[A-Za-z0-9:._-]{1,256}$/.test(proposalId)) {
    return { ok: false, field: "payload.actions.0.value", message: "must be a proposal id" };
  }
  return {
    ok: true,
    decision: {
      slackUserId: parsed.data.user.id,
      verb: action.action_id,
      proposalId,
      responseUrl: parsed.data.response_url ?? null,
      blocks: parsed.data.message?.blocks ?? [],
    },
  };
}
