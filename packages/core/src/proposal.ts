import type { ProposalKind, ProposalState } from "@safedeploy/schema";

/** An approval: who, when, why. */
export interface ApprovalRecord {
  readonly by: string;
  readonly at: string;
  readonly reason: string;
}

/** A proposal: inert until approved; only then does the git actuator act on its plan. */
export interface Proposal {
  readonly id: string;
  /** At most one proposal per key: (incident, kind) or (service, kind, cause). */
  readonly key: string;
  readonly service: string;
  readonly incidentId: string | null;
  readonly kind: ProposalKind;
  readonly state: ProposalState;
  readonly createdAt: string;
  readonly causeId: string;
  readonly summary: string;
  readonly plan: Readonly<Record<string, unknown>>;
  readonly approvals: readonly ApprovalRecord[];
  /** Distinct approvers needed (policy `approvals.required`). */
  readonly required: number;
}

/** The idempotency key of a proposal: one per incident and kind, or per service, kind and cause. */
export function proposalKey(
  kind: ProposalKind,
  scope: { readonly incidentId: string } | { readonly service: string; readonly causeId: string },
): string {
  return "incidentId" in scope
    ? `${scope.incidentId}:${kind}`
    : `${scope.service}:${kind}:${scope.causeId}`;
}

/** The rollback an opened incident calls for: revert the last change under the service's path. */
export function rollbackProposal(input: {
  readonly id: string;
  readonly incident: {
    readonly id: string;
    readonly service: string;
    readonly slo: string | null;
    readonly severity: string;
  };
  readonly rollbackPath: string;
  readonly required: number;
  readonly at: string;
}): Proposal {
  const { incident } = input;
  return {
    id: input.id,
    key: proposalKey("rollback-rollout", { incidentId: incident.id }),
    service: incident.service,
    incidentId: incident.id,
    kind: "rollback-rollout",
    state: "pending",
    createdAt: input.at,
    causeId: incident.id,
    summary: `Roll back ${incident.service}: ${incident.slo ?? "service"} is ${incident.severity} (${incident.id})`,
    plan: { action: "git-revert", path: input.rollbackPath },
    approvals: [],
    required: input.required,
  };
}

export type ApprovalResult =
  | {
      readonly ok: true;
      readonly proposal: Proposal;
      readonly changed: boolean;
      readonly nowApproved: boolean;
    }
  | { readonly ok: false; readonly code: "conflict"; readonly message: string };

/**
 * Records an approval. Approving twice as the same person changes nothing; the proposal becomes
 * `approved` once `required` distinct people approved; a rejected, superseded or finished proposal
 * cannot be approved.
 */
export function approveProposal(proposal: Proposal, approval: ApprovalRecord): ApprovalResult {
  if (proposal.state !== "pending" && proposal.state !== "approved") {
    return {
      ok: false,
      code: "conflict",
      message: `${proposal.id} is ${proposal.state} and cannot be approved`,
    };
  }
  if (proposal.approvals.some((a) => a.by === approval.by)) {
    return { ok: true, proposal, changed: false, nowApproved: false };
  }
  if (proposal.state === "approved")
    return { ok: true, proposal, changed: false, nowApproved: false };
  const approvals = [...proposal.approvals, approval];
  const approved = approvals.length >= proposal.required;
  return {
    ok: true,
    changed: true,
    nowApproved: approved,
    proposal: { ...proposal, approvals, state: approved ? "approved" : "pending" },
  };
}

/** Rejects a pending proposal; rejecting again is a no-op, anything else a conflict. */
export function rejectProposal(proposal: Proposal): ApprovalResult {
  if (proposal.state === "rejected")
    return { ok: true, proposal, changed: false, nowApproved: false };
  if (proposal.state !== "pending") {
    return {
      ok: false,
      code: "conflict",
      message: `${proposal.id} is ${proposal.state} and cannot be rejected`,
    };
  }
  return {
    ok: true,
    proposal: { ...proposal, state: "rejected" },
    changed: true,
    nowApproved: false,
  };
}

/** Retires a pending proposal that a newer one replaces (e.g. a block lifted, a newer cause). */
export function supersedeProposal(proposal: Proposal): Proposal {
  return proposal.state === "pending" ? { ...proposal, state: "superseded" } : proposal;
}
