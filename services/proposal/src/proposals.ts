import { createHash } from "node:crypto";
import {
  approveProposal,
  promotionProposal,
  rejectProposal,
  revertProposal,
  rollbackAnswers,
  rollbackProposal,
  supersedeProposal,
} from "@safedeploy/core";
import type { Proposal } from "@safedeploy/core";
import { CommandFailedError, KvConflictError, mutate } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { CommandRequest, Envelope, ProposalView } from "@safedeploy/schema";
import type { BlockIndex, ProposalRecord } from "./store.js";

export interface ProposalDeps {
  readonly proposals: TypedKv<ProposalRecord>;
  /** Per service, the block-promotion proposal of its latest blocked verdict (same bucket). */
  readonly blocks: TypedKv<BlockIndex>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  readonly serviceFor: (
    name: string,
  ) => { rollbackPath: string | null; approvalsRequired: number } | undefined;
  readonly now: () => string;
  /** The environment-repo commit live when the service's burn began, when deploy events say. */
  readonly liveRevisionAt?: (service: string, burnBegan: string) => Promise<string | undefined>;
}

/** A stable proposal id from its idempotency key: the same cause always names the same proposal. */
export function proposalIdFor(key: string): string {
  return `PRP-${createHash("sha256").update(key).digest("hex").slice(0, 12).toUpperCase()}`;
}

export function toView(proposal: ProposalRecord): ProposalView {
  return {
    id: proposal.id,
    service: proposal.service,
    incidentId: proposal.incidentId,
    kind: proposal.kind,
    state: proposal.state,
    createdAt: proposal.createdAt,
    approvals: proposal.approvals,
    action: null,
    required: proposal.required,
  };
}

/** What a proposal was made for: a message, or a command's correlation id. */
type Cause = Envelope | { readonly correlationId: string };

export function created(proposal: ProposalRecord, cause: Cause): Envelope {
  return createEnvelope(
    {
      type: "governance.proposal-created",
      id: messageId("governance.proposal-created", proposal.id),
      service: proposal.service,
      data: {
        proposalId: proposal.id,
        kind: proposal.kind,
        incidentId: proposal.incidentId,
        causeId: proposal.causeId,
        createdAt: proposal.createdAt,
        summary: proposal.summary,
        plan: proposal.plan,
      },
    },
    {
      source: "proposal",
      time: proposal.createdAt,
      ...("id" in cause ? { causedBy: cause } : { correlationId: cause.correlationId }),
    },
  );
}

/**
 * A dry run of the proposal's plan by the git actuator: the exact diff approving would push,
 * computed now and shown beside the proposal. Its own event type: a preview is never an action.
 */
function previewRequest(proposal: ProposalRecord): Envelope {
  return createEnvelope(
    {
      type: "governance.preview-requested",
      id: messageId("governance.preview-requested", proposal.id),
      service: proposal.service,
      data: {
        proposalId: proposal.id,
        kind: proposal.kind,
        incidentId: proposal.incidentId,
        requestedAt: proposal.createdAt,
        plan: proposal.plan,
      },
    },
    { source: "proposal", time: proposal.createdAt, correlationId: proposal.causeId },
  );
}

async function proposeRollback(
  deps: ProposalDeps,
  incident: {
    id: string;
    service: string;
    slo: string | null;
    severity: string;
    at: string;
    burnBegan: string;
  },
  cause: Envelope,
): Promise<void> {
  const service = deps.serviceFor(incident.service);
  if (service === undefined || service.rollbackPath === null) return; // nothing to roll back: policy flags it
  const liveRevision = await deps.liveRevisionAt?.(incident.service, incident.burnBegan);
  const draft = rollbackProposal(
    {
      incident,
      rollbackPath: service.rollbackPath,
      burnBegan: incident.burnBegan,
      liveRevision,
      required: service.approvalsRequired,
      at: incident.at,
    },
    proposalIdFor,
  );
  await propose(deps, draft, cause);
}

/**
 * An opened SLO incident gets one rollback proposal, whatever the number of deliveries: the id
 * comes from (incident, kind) and the KV create only succeeds once. The created event is
 * (re)published every time, deduplicated by its message id, so a crash after the write loses
 * nothing. A policy incident (a declaration problem) gets none.
 */
export const onIncidentOpened =
  (deps: ProposalDeps) =>
  async (opened: Envelope<"incidents.opened">): Promise<void> => {
    if (opened.data.origin === "policy") return;
    await proposeRollback(
      deps,
      {
        id: opened.data.incidentId,
        service: opened.service,
        slo: opened.data.slo,
        severity: opened.data.severity,
        at: opened.data.openedAt,
        burnBegan: opened.data.burnBegan ?? opened.data.openedAt,
      },
      opened,
    );
  };

/**
 * An incident that escalates into a burn (a policy incident whose service then burns) gets its
 * rollback proposal then; for one that had it already, the same key finds the same proposal.
 */
export const onIncidentEscalated =
  (deps: ProposalDeps) =>
  async (escalated: Envelope<"incidents.escalated">): Promise<void> => {
    if (!rollbackAnswers(escalated.data.severity)) return;
    await proposeRollback(
      deps,
      {
        id: escalated.data.incidentId,
        service: escalated.service,
        slo: null,
        severity: escalated.data.severity,
        at: escalated.data.at,
        burnBegan: escalated.data.at,
      },
      escalated,
    );
  };

/**
 * Stores a drafted proposal under its id (derived from its key) unless it exists (then the stored
 * one stands), and publishes its created event, deduplicated by id: however often a cause is
 * delivered, one proposal, one event.
 */
export async function propose(
  deps: ProposalDeps,
  draft: Proposal,
  cause: Cause,
): Promise<ProposalRecord> {
  const proposal = draft as ProposalRecord;
  let stored = proposal;
  try {
    await deps.proposals.create(proposal.id, proposal);
  } catch (error) {
    if (!(error instanceof KvConflictError)) throw error;
    stored = (await deps.proposals.get(proposal.id))?.value ?? proposal;
  }
  await deps.publish(created(stored, cause));
  // A release train's promotion is previewed by the train itself (its dry run): none here.
  if (stored.kind !== "promote-release") await deps.publish(previewRequest(stored));
  return stored;
}

/**
 * Retires a pending proposal a newer cause replaced; anything else is left as it is. The
 * superseded event is published each time it applies, deduplicated by id.
 */
export async function supersede(
  deps: ProposalDeps,
  id: string,
  by: string | null,
  reason: string,
  at: string,
): Promise<void> {
  const { proposal, changed } = await decide(deps, id, (p) => {
    const next = supersedeProposal(p);
    return { ok: true, proposal: next, changed: next !== p, nowApproved: false };
  });
  if (!changed && proposal.state !== "superseded") return;
  await deps.publish(
    createEnvelope(
      {
        type: "governance.proposal-superseded",
        id: messageId("governance.proposal-superseded", proposal.id),
        service: proposal.service,
        data: { proposalId: proposal.id, supersededBy: by, at, reason },
      },
      { source: "proposal", time: at, correlationId: proposal.causeId },
    ),
  );
}

/** What deciding on a stored proposal came to. */
interface Decided {
  readonly proposal: ProposalRecord;
  readonly changed: boolean;
  readonly nowApproved: boolean;
}

/**
 * Applies a core decision (approve, reject, supersede, record an outcome) to a stored proposal by
 * compare-and-set; `not_found` for an unknown id, `conflict` for a refused decision.
 */
export async function decide(
  deps: ProposalDeps,
  id: string,
  change: (proposal: Proposal) => ReturnType<typeof approveProposal>,
): Promise<Decided> {
  const { result } = await mutate<ProposalRecord, Decided>(deps.proposals, id, (entry) => {
    if (entry === null) throw new CommandFailedError("not_found", `no proposal ${id}`);
    const decided = change(entry.value);
    if (!decided.ok) throw new CommandFailedError("conflict", decided.message);
    if (!decided.changed) {
      return {
        next: undefined,
        result: { proposal: entry.value, changed: false, nowApproved: false },
      };
    }
    const proposal = decided.proposal as ProposalRecord;
    return {
      next: proposal,
      result: { proposal, changed: true, nowApproved: decided.nowApproved },
    };
  }).catch((error: unknown) => {
    if (error instanceof KvConflictError) {
      throw new CommandFailedError("unavailable", `proposal ${id} is changing too fast; try again`);
    }
    throw error;
  });
  return result;
}

/** Approve: idempotent per person; once `required` distinct people approved, hand it to the actuator. */
export async function approve(
  deps: ProposalDeps,
  request: { proposalId: string; by: string; reason: string },
) {
  const at = deps.now();
  const { proposal } = await decide(deps, request.proposalId, (p) =>
    approveProposal(p, { by: request.by, at, reason: request.reason }),
  );
  const mine = proposal.approvals.find((a) => a.by === request.by);
  if (mine !== undefined) {
    await deps.publish(
      createEnvelope(
        {
          type: "governance.proposal-approved",
          id: messageId("governance.proposal-approved", proposal.id, request.by),
          service: proposal.service,
          data: {
            proposalId: proposal.id,
            by: mine.by,
            at: mine.at,
            reason: mine.reason,
            approvals: proposal.approvals.length,
            required: proposal.required,
            approved: proposal.state === "approved",
          },
        },
        { source: "proposal", time: mine.at, correlationId: proposal.causeId },
      ),
    );
  }
  // A release train's promotion is requested by its train, once the gate passed again.
  if (proposal.state === "approved" && proposal.kind !== "promote-release") {
    // Republished on every approve call, deduplicated by id: a crash after the write loses nothing.
    const approvedAt = proposal.approvals.at(-1)?.at ?? at;
    await deps.publish(
      createEnvelope(
        {
          type: "governance.action-requested",
          id: messageId("governance.action-requested", proposal.id),
          service: proposal.service,
          data: {
            proposalId: proposal.id,
            kind: proposal.kind,
            incidentId: proposal.incidentId,
            requestedAt: approvedAt,
            plan: proposal.plan,
          },
        },
        { source: "proposal", time: approvedAt, correlationId: proposal.causeId },
      ),
    );
  }
  return toView(proposal);
}

/** Reject: a pending proposal becomes rejected and can no longer be approved. */
export async function reject(
  deps: ProposalDeps,
  request: { proposalId: string; by: string; reason: string },
) {
  const at = deps.now();
  const { proposal, changed } = await decide(deps, request.proposalId, (p) => rejectProposal(p));
  if (changed) {
    await deps.publish(
      createEnvelope(
        {
          type: "governance.proposal-rejected",
          id: messageId("governance.proposal-rejected", proposal.id),
          service: proposal.service,
          data: { proposalId: proposal.id, by: request.by, at, reason: request.reason },
        },
        { source: "proposal", time: at, correlationId: proposal.causeId },
      ),
    );
  }
  return toView(proposal);
}

/**
 * `proposal.revert`: another service (a release train) asks for the revert of one service's path.
 * It becomes a pending rollback-rollout proposal like any other: one per (service, cause), and a
 * person approves it.
 */
export async function requestRevert(
  deps: ProposalDeps,
  request: CommandRequest<"proposal.revert">,
): Promise<ProposalView> {
  const service = deps.serviceFor(request.service);
  if (service === undefined) {
    throw new CommandFailedError("not_found", `no service named ${request.service}`);
  }
  const draft = revertProposal(
    {
      service: request.service,
      causeId: request.causeId,
      path: request.path,
      commit: request.commit ?? null,
      reason: request.reason,
      required: service.approvalsRequired,
      at: request.at,
    },
    proposalIdFor,
  );
  return toView(await propose(deps, draft, { correlationId: request.causeId }));
}

/**
 * `proposal.promotion`: a release train's step, as a proposal like any other. Created once (its id
 * is the train's), approved by the person who started the train; it counts as approved once the
 * service's `approvals.required` distinct people approved. Asking again returns it as it is.
 */
export async function requestPromotion(
  deps: ProposalDeps,
  request: CommandRequest<"proposal.promotion">,
): Promise<ProposalView> {
  const service = deps.serviceFor(request.service);
  if (service === undefined) {
    throw new CommandFailedError("not_found", `no service named ${request.service}`);
  }
  const draft = promotionProposal(
    {
      service: request.service,
      trainId: request.trainId,
      step: request.step,
      summary: request.summary,
      plan: request.plan,
      required: service.approvalsRequired,
      at: request.at,
    },
    // The train's own id: its branch is `safedeploy/<trainId>-s<n>`.
    () => request.proposalId,
  );
  const stored = await propose(deps, draft, { correlationId: request.trainId });
  if (stored.state !== "pending" || stored.approvals.some((a) => a.by === request.actor)) {
    return toView(stored);
  }
  return approve(deps, {
    proposalId: stored.id,
    by: request.actor,
    reason: `started release train ${request.trainId}`,
  });
}
