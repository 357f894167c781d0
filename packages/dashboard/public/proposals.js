// @ts-check
// The Proposals card: the open ones (with what approving would push, and Approve / Reject),
// then the most recently decided.
import { diffView, fillCard, h, time } from "./dom.js";

/** @typedef {import("@safedeploy/schema").ProposalPlan} ProposalPlan */
/** @typedef {import("@safedeploy/schema").ProposalState} ProposalState */
/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Proposal} Proposal */
/** @typedef {import("./decision.js").Verb} Verb */

/**
 * Opens the decision on a proposal (the decision dialog).
 * @typedef {(verb: Verb, proposal: Proposal) => void} Decide
 */

/** @type {readonly ProposalState[]} */
const OPEN_PROPOSALS = ["pending", "approved", "needs-triage"];
const RECENT_PROPOSALS = 5;

/**
 * The element id of a proposal's card, the target of links to it (e.g. from a train).
 * @param {string} id
 */
export const proposalAnchor = (id) => `proposal-${id}`;

/** @param {ProposalPlan | undefined} plan */
function planText(plan) {
  if (!plan || typeof plan !== "object") return null;
  if (plan.action === "git-revert") {
    return `Would revert, on a new branch, the latest commit that changed ${plan.path} in the environment repo.`;
  }
  if (plan.action === "pause-rollout") {
    return `Would pause the rollout under ${plan.path} in the environment repo.`;
  }
  if (plan.action === "record-only") {
    return "Records the block; pushes nothing.";
  }
  if (plan.action === "set-canary-weight") {
    return `Would set the canary weight of ${plan.path} from ${plan.from}% to ${plan.to}%.`;
  }
  return `Plan: ${JSON.stringify(plan)}`;
}

/** @param {Proposal} proposal */
function previewOf(proposal) {
  const preview = proposal.action ? null : proposal.preview;
  const plan = proposal.action ? null : planText(proposal.plan);
  return [
    plan ? h("p", { class: "plan", text: plan }) : null,
    preview?.error
      ? h("p", {
          class: "error",
          "data-testid": "preview-error",
          text: `Dry run: ${preview.error}`,
        })
      : null,
    preview?.diff
      ? h(
          "details",
          { open: true, "data-testid": "preview" },
          h("summary", { text: "Diff approving would push (dry run)" }),
          diffView(preview.diff),
        )
      : null,
  ];
}

/** @param {NonNullable<Proposal["action"]>} action */
function actionOf(action) {
  return [
    h(
      "dl",
      { class: "action", "data-testid": "action" },
      h("dt", { text: "branch" }),
      h("dd", {}, h("code", { "data-testid": "action-branch", text: action.branch })),
      h("dt", { text: "commit" }),
      h("dd", {}, h("code", { text: action.commit })),
      h("dt", { text: "pull request" }),
      h(
        "dd",
        {},
        action.prUrl
          ? h("a", {
              href: action.prUrl,
              rel: "noopener noreferrer",
              target: "_blank",
              text: action.prUrl,
            })
          : "none (branch pushed)",
      ),
    ),
    action.diff
      ? h("details", { open: true }, h("summary", { text: "Diff pushed" }), diffView(action.diff))
      : null,
  ];
}

/**
 * @param {Proposal} proposal
 * @param {Decide} decide
 */
function decisionButtons(proposal, decide) {
  return h(
    "div",
    { class: "actions" },
    h("button", {
      type: "button",
      class: "primary",
      "data-testid": "approve",
      "aria-label": `Approve ${proposal.id}`,
      text: "Approve",
      onclick: () => decide("approve", proposal),
    }),
    h("button", {
      type: "button",
      class: "danger",
      "data-testid": "reject",
      "aria-label": `Reject ${proposal.id}`,
      text: "Reject",
      onclick: () => decide("reject", proposal),
    }),
  );
}

/**
 * @param {Proposal} proposal
 * @param {Decide} decide
 */
function proposalCard(proposal, decide) {
  return h(
    "article",
    {
      id: proposalAnchor(proposal.id),
      class: "proposal",
      "data-testid": "proposal",
      "data-id": proposal.id,
      "data-state": proposal.state,
      "data-service": proposal.service,
      "data-kind": proposal.kind,
      "aria-label": `Proposal ${proposal.id}`,
    },
    h(
      "header",
      {},
      h("strong", { text: proposal.id }),
      h("span", { text: proposal.kind }),
      h("span", { text: proposal.service }),
      h("span", {
        class: `badge state-${proposal.state}`,
        "data-testid": "proposal-state",
        text: proposal.state,
      }),
      proposal.incidentId ? h("span", { class: "meta", text: `for ${proposal.incidentId}` }) : null,
    ),
    proposal.summary ? h("p", { class: "summary", text: proposal.summary }) : null,
    previewOf(proposal),
    proposal.failure
      ? h("p", {
          class: "error",
          text: `Action failed${proposal.failure.needsTriage ? " (needs triage)" : ""}: ${proposal.failure.reason}`,
        })
      : null,
    proposal.approvals.length > 0
      ? h(
          "ul",
          { class: "approvals", "aria-label": "Approvals", "data-testid": "approvals" },
          proposal.approvals.map((a) =>
            h(
              "li",
              {},
              h("strong", { text: a.by }),
              ` approved ${time(a.at)}: `,
              h("q", { text: a.reason }),
            ),
          ),
        )
      : null,
    proposal.action ? actionOf(proposal.action) : null,
    proposal.state === "pending" ? decisionButtons(proposal, decide) : null,
  );
}

/**
 * @param {readonly Proposal[]} proposals newest first
 * @param {Decide} decide
 */
function renderProposals(proposals, decide) {
  const open = proposals.filter((p) => OPEN_PROPOSALS.includes(p.state));
  const recent = proposals
    .filter((p) => !OPEN_PROPOSALS.includes(p.state))
    .slice(0, RECENT_PROPOSALS);
  const card = (/** @type {Proposal} */ proposal) => proposalCard(proposal, decide);
  fillCard(
    "proposals",
    h("h3", { text: "Waiting for a decision or the actuator" }),
    open.length === 0
      ? h("p", { class: "empty", text: "No open proposals." })
      : h("div", { "data-testid": "open-proposals" }, open.map(card)),
    h("h3", { text: "Recently decided" }),
    recent.length === 0
      ? h("p", { class: "empty", text: "None yet." })
      : h("div", { "data-testid": "recent-proposals" }, recent.map(card)),
  );
}

/**
 * @param {Api} api
 * @param {Decide} decide
 */
export async function loadProposals(api, decide) {
  renderProposals((await api.list("proposals", 100)).items, decide);
}
