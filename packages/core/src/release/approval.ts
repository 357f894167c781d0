/**
 * A step's promotion proposal and its approvals (DESIGN.md invariant 9): the proposal service's
 * answer, each person's approval and a rejection. Complete approvals ask the gate again before
 * anything is promoted; a rejection stops the train with nothing pushed.
 */
import { askGate } from "./gate.js";
import { stopBeforeChange } from "./halt.js";
import { promotionProposalId } from "./ids.js";
import { promote } from "./promote.js";
import type { TrainDecision, TrainEvent } from "./protocol.js";
import { governanceDetails, stepEvent } from "./published.js";
import { decided, ignore, plannedStep, withStep } from "./state.js";
import type { PromotionApproval, StepApproval, TrainState } from "./types.js";

/** Approvals by distinct people, the first of each kept. */
function distinctApprovals(approvals: readonly PromotionApproval[]): PromotionApproval[] {
  const seen = new Set<string>();
  return approvals.filter((approval) => {
    if (seen.has(approval.by)) return false;
    seen.add(approval.by);
    return true;
  });
}

/** The proposal waits for more approvers: the step waits with it, durably. */
function awaitApproval(state: TrainState, index: number, now: string): TrainDecision {
  const waiting = withStep(state, index, { phase: "awaiting-approval" });
  return decided(
    waiting,
    [
      stepEvent(waiting, index, "awaiting-approval", now, {
        details: governanceDetails(waiting.steps[index]),
      }),
    ],
    [],
  );
}

/** Why a proposal's rejection stops a step: who rejected it and why, when known. */
function rejectionText(approval: StepApproval): string {
  const { rejection } = approval;
  if (approval.state === "rejected") {
    return rejection === null || rejection === undefined
      ? `promotion rejected (proposal ${approval.proposalId})`
      : `promotion rejected by ${rejection.by}: ${rejection.reason}`;
  }
  return `promotion can no longer be approved: proposal ${approval.proposalId} is ${approval.state}`;
}

/**
 * `approval-answered` (a `proposing` step): approved (the starter's approval was enough) →
 * promoted at once, the gate having just passed; pending → `awaiting-approval`; rejected,
 * superseded or needing triage → the train halts, nothing pushed.
 */
export function onApprovalAnswered(
  state: TrainState,
  event: Extract<TrainEvent, { type: "approval-answered" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "proposing") {
    return ignore(state, `step ${event.step} is not asking for its proposal`);
  }
  const approval: StepApproval = {
    proposalId: promotionProposalId(state.trainId, event.step),
    state: event.state,
    required: event.required ?? plannedStep(state.plan, event.step).approvals ?? 1,
    approvals: distinctApprovals(event.approvals),
    rejection: event.rejection ?? null,
  };
  const recorded = withStep(state, event.step, { approval });
  switch (event.state) {
    case "approved":
    case "executed":
      return promote(recorded, event.step, now);
    case "pending":
      return awaitApproval(recorded, event.step, now);
    default:
      return stopBeforeChange(recorded, event.step, "rejected", rejectionText(approval), now);
  }
}

/**
 * `promotion-approved` (an `awaiting-approval` step): one more person approved. Once the
 * approvals are complete the gate is asked again (time passed since it was), and only its pass
 * promotes.
 */
export function onPromotionApproved(
  state: TrainState,
  event: Extract<TrainEvent, { type: "promotion-approved" }>,
): TrainDecision {
  const step = state.steps[event.step];
  const approval = step?.approval ?? null;
  if (state.status !== "running" || step?.phase !== "awaiting-approval" || approval === null) {
    return ignore(state, `step ${event.step} is not awaiting approval`);
  }
  const known = approval.approvals.some((a) => a.by === event.by);
  if (known && !event.approved) return ignore(state, `${event.by} already approved`);
  const approvals = known
    ? approval.approvals
    : [...approval.approvals, { by: event.by, at: event.at }];
  const counted: StepApproval = { ...approval, approvals, required: event.required };
  if (!event.approved) return decided(withStep(state, event.step, { approval: counted }), [], []);
  const approved = withStep(state, event.step, { approval: { ...counted, state: "approved" } });
  const gating = askGate(approved, event.step);
  return decided(gating.state, [], [gating.action]);
}

/** `promotion-rejected` (a step awaiting or asking for its proposal): the train halts. */
export function onPromotionRejected(
  state: TrainState,
  event: Extract<TrainEvent, { type: "promotion-rejected" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (
    state.status !== "running" ||
    (step?.phase !== "awaiting-approval" && step?.phase !== "proposing")
  ) {
    return ignore(state, `step ${event.step} is not awaiting approval`);
  }
  const approval: StepApproval = {
    proposalId: promotionProposalId(state.trainId, event.step),
    required: plannedStep(state.plan, event.step).approvals ?? 1,
    approvals: [],
    ...step.approval,
    state: "rejected",
    rejection: { by: event.by, reason: event.reason },
  };
  const rejected = withStep(state, event.step, { approval });
  return stopBeforeChange(rejected, event.step, "rejected", rejectionText(approval), now);
}
