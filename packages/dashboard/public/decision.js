// @ts-check
// The decision dialog: approve or reject a proposal, with the reason the audit log records.
/* global HTMLButtonElement, HTMLDialogElement, HTMLFormElement, HTMLTextAreaElement */
import { describeRefusal } from "./api.js";
import { byId } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Proposal} Proposal */
/** @typedef {"approve" | "reject"} Verb */

/**
 * @typedef {object} DecisionDialog
 * @property {(verb: Verb, proposal: Proposal) => void} open Asks for the reason of a decision.
 * @property {() => void} close Closes the dialog (if open) without deciding.
 */

/**
 * The page's decision dialog: it posts the decision with `api` and calls `onDecided` once the
 * API took it; a refusal stays in the dialog for the user to read.
 * @param {object} options
 * @param {Api} options.api
 * @param {() => void} options.onDecided
 * @returns {DecisionDialog}
 */
export function createDecisionDialog({ api, onDecided }) {
  const dialog = byId("decision", HTMLDialogElement);
  const title = byId("decision-title");
  const summary = byId("decision-summary");
  const reason = byId("decision-reason", HTMLTextAreaElement);
  const error = byId("decision-error");
  const confirm = byId("decision-confirm", HTMLButtonElement);
  /** @type {{ verb: Verb, proposal: Proposal } | null} */
  let decision = null;

  /**
   * @param {Verb} verb
   * @param {Proposal} proposal
   */
  function open(verb, proposal) {
    decision = { verb, proposal };
    title.textContent = `${verb === "approve" ? "Approve" : "Reject"} ${proposal.id}`;
    summary.textContent = `${proposal.kind} of ${proposal.service}${proposal.summary ? `: ${proposal.summary}` : ""}`;
    confirm.textContent = verb === "approve" ? "Approve" : "Reject";
    confirm.className = verb === "approve" ? "primary" : "danger";
    confirm.disabled = false;
    error.textContent = "";
    reason.value = "";
    dialog.showModal();
    reason.focus();
  }

  function close() {
    decision = null;
    if (dialog.open) dialog.close();
  }

  /** @param {SubmitEvent} event */
  async function submit(event) {
    event.preventDefault();
    if (decision === null) return;
    const why = reason.value.trim();
    if (why === "") {
      error.textContent = "Say why: the reason is recorded in the audit log.";
      return;
    }
    const { verb, proposal } = decision;
    confirm.disabled = true;
    try {
      await api.post(`/v1/proposals/${encodeURIComponent(proposal.id)}/${verb}`, { reason: why });
      close();
      onDecided();
    } catch (refusal) {
      error.textContent = describeRefusal(refusal);
      confirm.disabled = false;
    }
  }

  byId("decision-form", HTMLFormElement).addEventListener("submit", (event) => void submit(event));
  byId("decision-cancel").addEventListener("click", close);
  return { open, close };
}
