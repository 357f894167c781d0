import type {
  GateReason,
  ImagePlan,
  PatchPlan,
  ProposalKind,
  ProposalPlan,
  ProposalState,
} from "@safedeploy/schema";
import { promotionProposalId } from "./ids.js";

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
  /** Inert: what approving does in the environment repo. */
  readonly plan: ProposalPlan;
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
export function rollbackProposal(
  input: {
    readonly incident: {
      readonly id: string;
      readonly service: string;
      readonly slo: string | null;
      readonly severity: string;
    };
    readonly rollbackPath: string;
    /**
     * When the burn began: the git actuator never reverts a commit made after it (it cannot be
     * the cause), the proposal needs triage instead.
     */
    readonly burnBegan: string;
    /** The revision live when the burn began, when deploy events say (see `RevertPlan`). */
    readonly liveRevision?: string | undefined;
    readonly required: number;
    readonly at: string;
  },
  /** The id the proposal's key names (derived, so the same cause names the same proposal). */
  idFor: (key: string) => string,
): Proposal {
  const { incident } = input;
  const key = proposalKey("rollback-rollout", { incidentId: incident.id });
  return {
    id: idFor(key),
    key,
    service: incident.service,
    incidentId: incident.id,
    kind: "rollback-rollout",
    state: "pending",
    createdAt: input.at,
    causeId: incident.id,
    summary: `Roll back ${incident.service}: ${incident.slo ?? "service"} is ${incident.severity} (${incident.id})`,
    plan: {
      action: "git-revert",
      path: input.rollbackPath,
      burnBegan: input.burnBegan,
      ...(input.liveRevision === undefined ? {} : { liveRevision: input.liveRevision }),
    },
    approvals: [],
    required: input.required,
  };
}

/**
 * A revert asked for by another decision than an incident (a release train's failing step): the
 * same git revert of the service's path, keyed by (service, kind, cause).
 */
export function revertProposal(
  input: {
    readonly service: string;
    readonly causeId: string;
    readonly path: string;
    readonly commit: string | null;
    readonly reason: string;
    readonly required: number;
    readonly at: string;
  },
  /** The id the proposal's key names (derived, so the same cause names the same proposal). */
  idFor: (key: string) => string,
): Proposal {
  const key = proposalKey("rollback-rollout", { service: input.service, causeId: input.causeId });
  return {
    id: idFor(key),
    key,
    service: input.service,
    incidentId: null,
    kind: "rollback-rollout",
    state: "pending",
    createdAt: input.at,
    causeId: input.causeId,
    summary: `Revert ${input.service}: ${input.reason}`,
    plan: {
      action: "git-revert",
      path: input.path,
      ...(input.commit === null ? {} : { commit: input.commit }),
    },
    approvals: [],
    required: input.required,
  };
}

/**
 * The proposal a blocked verdict calls for: pause the service's Rollout in the environment repo,
 * so the execution plane cannot promote it either (or, with no rollback path, only record it).
 */
export function blockPromotionProposal(
  input: {
    readonly service: string;
    /** The verdict that blocked promotion. */
    readonly causeId: string;
    readonly reasons: readonly GateReason[];
    readonly rollbackPath: string | null;
    readonly required: number;
    readonly at: string;
  },
  /** The id the proposal's key names (derived, so the same cause names the same proposal). */
  idFor: (key: string) => string,
): Proposal {
  const codes = input.reasons.map((reason) => reason.code);
  const key = proposalKey("block-promotion", { service: input.service, causeId: input.causeId });
  return {
    id: idFor(key),
    key,
    service: input.service,
    incidentId: null,
    kind: "block-promotion",
    state: "pending",
    createdAt: input.at,
    causeId: input.causeId,
    summary: `Block promotion of ${input.service}: ${input.reasons.map((r) => r.message).join("; ")}`,
    plan:
      input.rollbackPath === null
        ? { action: "record-only", reasons: codes }
        : { action: "pause-rollout", path: input.rollbackPath, reasons: codes },
    approvals: [],
    required: input.required,
  };
}

/** The promotion a healthy, baked canary step calls for: set the next canary weight in Git. */
export function promoteCanaryProposal(
  input: {
    readonly service: string;
    /** The canary-healthy event that found the step baked. */
    readonly causeId: string;
    readonly path: string;
    readonly from: number;
    readonly to: number;
    readonly required: number;
    readonly at: string;
  },
  /** The id the proposal's key names (derived, so the same cause names the same proposal). */
  idFor: (key: string) => string,
): Proposal {
  const key = proposalKey("promote-canary", { service: input.service, causeId: input.causeId });
  return {
    id: idFor(key),
    key,
    service: input.service,
    incidentId: null,
    kind: "promote-canary",
    state: "pending",
    createdAt: input.at,
    causeId: input.causeId,
    summary: `Promote the ${input.service} canary from ${input.from}% to ${input.to}%: healthy through its bake time`,
    plan: { action: "set-canary-weight", path: input.path, from: input.from, to: input.to },
    approvals: [],
    required: input.required,
  };
}

/**
 * Records what the git actuator did with an approved proposal: `executed` once its branch exists,
 * `needs-triage` when it could not act unambiguously. Anything but an approved proposal is left as
 * it is (a redelivered outcome changes nothing).
 */
export function recordActionOutcome(
  proposal: Proposal,
  outcome: "executed" | "needs-triage",
): Proposal {
  return proposal.state === "approved" ? { ...proposal, state: outcome } : proposal;
}

/**
 * A preview (the git actuator's dry run) found that the rollback would re-apply harm (it would
 * revert SafeDeploy's own rollback, a service's creation, or a commit newer than the burn): a
 * pending proposal needs triage before anyone approves it. Anything else is left as it is.
 */
export function recordPreviewRefusal(proposal: Proposal): Proposal {
  return proposal.state === "pending" ? { ...proposal, state: "needs-triage" } : proposal;
}

/**
 * A release train's promotion of one step, as a proposal (one per train step, its id the
 * train's `<trainId>-s<n>`). The train asks the gate before and after its approvals, and
 * requests the change itself.
 */
export function promotionProposal(
  input: {
    readonly service: string;
    readonly trainId: string;
    readonly step: number;
    readonly summary: string;
    readonly plan: ImagePlan | PatchPlan;
    readonly required: number;
    readonly at: string;
  },
  /** The id the proposal's key names (derived, so the same cause names the same proposal). */
  idFor: (key: string) => string,
): Proposal {
  const key = proposalKey("promote-release", {
    service: input.service,
    causeId: promotionProposalId(input.trainId, input.step),
  });
  return {
    id: idFor(key),
    key,
    service: input.service,
    incidentId: null,
    kind: "promote-release",
    state: "pending",
    createdAt: input.at,
    causeId: `${input.trainId}:step-${input.step + 1}`,
    summary: input.summary,
    plan: input.plan,
    approvals: [],
    required: input.required,
  };
}

/** States a proposal reaches only after it was approved. */
const ALREADY_APPROVED: readonly ProposalState[] = ["approved", "executed", "needs-triage"];

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
  const unchanged = { ok: true, proposal, changed: false, nowApproved: false } as const;
  // Approving what is already approved (or already acted on) returns it as it is: a client that
  // lost the answer and retries gets the same proposal, not an error.
  if (proposal.approvals.some((a) => a.by === approval.by)) return unchanged;
  if (ALREADY_APPROVED.includes(proposal.state)) return unchanged;
  if (proposal.state !== "pending") {
    return {
      ok: false,
      code: "conflict",
      message: `${proposal.id} is ${proposal.state} and cannot be approved`,
    };
  }
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
