import { canonicalJson } from "@safedeploy/schema";
import type { ProposalKind, ProposalPlan } from "@safedeploy/schema";
import { parseTrainActionId, promotionProposalId } from "./ids.js";
import type { Proposal } from "./proposal.js";

/** What the git actuator was asked to do, as the message says it. */
export interface RequestedAction {
  readonly proposalId: string;
  readonly service: string;
  readonly kind: ProposalKind;
  readonly plan: ProposalPlan;
}

/** The actuator's answer to a request: act on it, skip it (done already), or refuse it. */
export type ActionAuthority =
  | { readonly decision: "act" }
  | { readonly decision: "skip"; readonly reason: string }
  | { readonly decision: "refuse"; readonly code: RefusalCode; readonly reason: string };

/** Why a request was refused: the `reason` label of the actuator's refusal counter. */
export type RefusalCode = "no-proposal" | "not-approved" | "too-few-approvers" | "mismatch";

/**
 * The proposal whose approval covers an action: its own, or for a release train's manifest hook
 * (`<train>-s<n>-<hook>`), the promotion of that step (`<train>-s<n>`).
 */
export function authorizingProposalId(proposalId: string): string {
  const train = parseTrainActionId(proposalId);
  if (train?.hook == null) return proposalId;
  return promotionProposalId(train.trainId, train.step);
}

const distinctApprovers = (proposal: Proposal) => new Set(proposal.approvals.map((a) => a.by)).size;

/**
 * Whether the git actuator may act, decided from the proposal's own state and never from the
 * message: the proposal exists, is for this service and kind, was approved by the required number
 * of distinct people, and (for its own action) carries the very plan asked for. An executed
 * proposal is skipped: its change was made. A hook runs within its step's promotion, so that
 * promotion may be approved or executed; the hook's own plan comes from the catalog, not from
 * the proposal.
 */
export function authorizeAction(
  request: RequestedAction,
  proposal: Proposal | null,
): ActionAuthority {
  const refuse = (code: RefusalCode, reason: string): ActionAuthority => ({
    decision: "refuse",
    code,
    reason: `${request.proposalId}: ${reason}`,
  });
  const authorizingId = authorizingProposalId(request.proposalId);
  const hook = authorizingId !== request.proposalId;
  if (proposal?.id !== authorizingId) {
    return refuse("no-proposal", `no proposal ${authorizingId} to authorise it`);
  }
  if (proposal.service !== request.service || proposal.kind !== request.kind) {
    return refuse(
      "mismatch",
      `asked as ${request.kind} of ${request.service}, proposal ${proposal.id} is ${proposal.kind} of ${proposal.service}`,
    );
  }
  if (!hook && proposal.state === "executed") {
    return { decision: "skip", reason: `${proposal.id} was executed already` };
  }
  const approvedStates = hook ? ["approved", "executed"] : ["approved"];
  if (!approvedStates.includes(proposal.state)) {
    return refuse("not-approved", `proposal ${proposal.id} is ${proposal.state}, not approved`);
  }
  const approvers = distinctApprovers(proposal);
  if (approvers < proposal.required) {
    return refuse(
      "too-few-approvers",
      `proposal ${proposal.id} has ${String(approvers)} distinct approver(s) of ${String(proposal.required)} required`,
    );
  }
  if (!hook && canonicalJson(proposal.plan) !== canonicalJson(request.plan)) {
    return refuse("mismatch", `the plan asked for is not the plan of proposal ${proposal.id}`);
  }
  return { decision: "act" };
}
