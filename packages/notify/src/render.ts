import type { Notification } from "./notification.js";

/** Links to the SafeDeploy objects a notification is about, under the public base URL. */
export interface Links {
  readonly dashboard: string;
  readonly incident?: string;
  readonly proposal?: string;
  readonly service: string;
}

/** The links of `notification` under `baseUrl` (e.g. `https://safedeploy.example`). */
export function linksOf(notification: Notification, baseUrl: string): Links {
  const root = baseUrl.replace(/\/+$/, "");
  const id = encodeURIComponent;
  return {
    dashboard: `${root}/`,
    service: `${root}/v1/services/${id(notification.service)}`,
    ...(notification.incidentId === null
      ? {}
      : { incident: `${root}/v1/incidents/${id(notification.incidentId)}` }),
    ...(notification.proposalId === null
      ? {}
      : { proposal: `${root}/v1/proposals/${id(notification.proposalId)}` }),
  };
}

/**
 * The JSON body of a webhook (Standard Webhooks' `{type, timestamp, data}`): the event kind, when
 * it happened, and in `data` the service, the ids, a one-line summary, the links and the source
 * event's own payload.
 */
export function webhookBody(notification: Notification, links: Links): string {
  return JSON.stringify({
    type: notification.kind,
    timestamp: notification.at,
    data: {
      service: notification.service,
      eventId: notification.eventId,
      summary: notification.title,
      incidentId: notification.incidentId,
      proposalId: notification.proposalId,
      ...(notification.diff === null ? {} : { diff: notification.diff }),
      links,
      event: notification.data,
    },
  });
}

/** A Block Kit block, as Slack's incoming webhooks and `response_url` accept it. */
export type SlackBlock = Readonly<Record<string, unknown>>;

/** A Slack message: the fallback `text` and its blocks. */
export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
}

/** Slack's limits: section text 3000 characters, plain-text button labels 75. */
const SECTION_LIMIT = 3_000;

const mrkdwn = (text: string) => ({ type: "mrkdwn", text });
const plain = (text: string) => ({ type: "plain_text", text: text.slice(0, 75) });

/** `&`, `<` and `>` are Slack's control characters in text; everything else passes. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function budgetText(remaining: number | null): string {
  if (remaining === null) return "unknown";
  return `${(remaining * 100).toFixed(1)}% left`;
}

function factsBlock(notification: Notification): SlackBlock {
  const incident = notification.incident;
  const fields = [
    mrkdwn(`*Service*\n${slackEscape(notification.service)}`),
    mrkdwn(`*SLO*\n${slackEscape(incident?.slo ?? "—")}`),
    mrkdwn(`*Burn*\n${slackEscape(incident?.severity ?? "—")}`),
    mrkdwn(`*Budget*\n${budgetText(incident?.budgetRemaining ?? null)}`),
  ];
  return { type: "section", fields };
}

function diffBlock(diff: string | null): SlackBlock {
  if (diff === null)
    return { type: "section", text: mrkdwn("_No diff: the preview did not compute one._") };
  // The fence and its newlines take 8 characters of the section's limit.
  const body = clip(slackEscape(diff.replace(/```/g, "ˋˋˋ")), SECTION_LIMIT - 8);
  return { type: "section", text: mrkdwn(`\`\`\`\n${body}\n\`\`\``) };
}

function decisionBlock(notification: Notification, links: Links): SlackBlock {
  const id = notification.proposalId ?? "";
  const elements: SlackBlock[] = [
    {
      type: "button",
      action_id: "approve",
      style: "primary",
      value: id,
      text: plain("Approve"),
      confirm: {
        title: plain("Approve this proposal?"),
        text: mrkdwn(
          clip(slackEscape(`Approving ${id} counts toward its required approvals.`), 300),
        ),
        confirm: plain("Approve"),
        deny: plain("Cancel"),
      },
    },
    { type: "button", action_id: "reject", style: "danger", value: id, text: plain("Reject") },
  ];
  if (links.proposal !== undefined) {
    elements.push({ type: "button", action_id: "open", url: links.proposal, text: plain("Open") });
  }
  return { type: "actions", block_id: `proposal:${id}`, elements };
}

/**
 * The Block Kit message of a notification: the summary, the service's SLO, burn and budget, and
 * for a proposal's announcement the diff it would push and Approve / Reject buttons (each
 * button's `value` is the proposal id).
 */
export function slackMessage(notification: Notification, links: Links): SlackMessage {
  const blocks: SlackBlock[] = [
    { type: "section", text: mrkdwn(clip(`*${slackEscape(notification.title)}*`, SECTION_LIMIT)) },
    factsBlock(notification),
  ];
  if (notification.kind === "proposal.created") blocks.push(diffBlock(notification.diff));
  if (notification.decidable && notification.proposalId !== null) {
    blocks.push(decisionBlock(notification, links));
  }
  blocks.push({
    type: "context",
    elements: [
      mrkdwn(`${notification.kind} · ${notification.at} · <${links.dashboard}|SafeDeploy>`),
    ],
  });
  return { text: clip(notification.title, SECTION_LIMIT), blocks };
}

/**
 * The `response_url` update after a person decided from Slack: the original blocks without the
 * buttons, and a line saying who did what and where the proposal stands.
 */
export function slackOutcome(
  original: readonly SlackBlock[],
  outcome: { readonly text: string },
): SlackMessage & { readonly replace_original: true } {
  const kept = original.filter((block) => block.type !== "actions");
  return {
    replace_original: true,
    text: outcome.text,
    blocks: [...kept, { type: "section", text: mrkdwn(slackEscape(outcome.text)) }],
  };
}
