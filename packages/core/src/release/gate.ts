/**
 * The gate before every promotion (DESIGN.md invariant 9): a step whose turn came asks its
 * service's gate; anything but `pass` stops the train with nothing pushed.
 */
import type { GateReason, GateVerdictKind, GateView } from "@safedeploy/schema";
import { promotionProposalId } from "./ids.js";
import { stopBeforeChange } from "./halt.js";
import { promote, promotionPlan } from "./promote.js";
import type { TrainAction, TrainDecision, TrainEvent } from "./protocol.js";
import { decided, ignore, plannedStep, withStep } from "./state.js";
import type { StepApproval, StepGate, TrainState } from "./types.js";

/**
 * The gate's verdict from what `gate.query` answered, failing closed: an answer that claims
 * `pass` without `allowed` is a block.
 */
export function verdictOfGateView(view: Pick<GateView, "verdict" | "allowed">): GateVerdictKind {
  if (view.verdict === "pass") return view.allowed ? "pass" : "block";
  return view.verdict;
}

/**
 * A step whose turn came asks its service's gate first; so does a step whose approvals came in
 * after the gate was last asked (time passed: the answer may have changed).
 */
export function askGate(
  state: TrainState,
  index: number,
): { readonly state: TrainState; readonly action: TrainAction } {
  return {
    state: withStep(state, index, { phase: "gating" }),
    action: { kind: "ask-gate", step: index, service: plannedStep(state.plan, index).service },
  };
}

/** `code: message` of each reason, or that there was none. */
function gateReasonsText(reasons: readonly GateReason[]): string {
  return reasons.map((r) => `${r.code}: ${r.message}`).join("; ") || "no reason given";
}

/**
 * `gate-answered` (a `gating` step): anything but `pass` blocks the step and halts the train,
 * nothing pushed. A pass promotes a step whose approvals are complete (they came in after the
 * gate was last asked); a dry run records the approvals it would need and promotes (its
 * promotion pushes nothing); otherwise the step's promotion proposal is asked for.
 */
export function onGateAnswered(
  state: TrainState,
  event: Extract<TrainEvent, { type: "gate-answered" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "gating") {
    return ignore(state, `step ${event.step} is not asking its gate`);
  }
  const { verdict, reasons, evidenceAge } = event;
  const gate: StepGate = { verdict, reasons, at: now, evidenceAge };
  const gated = withStep(state, event.step, { gate });
  if (gate.verdict !== "pass") {
    const how = gate.verdict === "unknown" ? " (unknown: it cannot see)" : "";
    const failure = `blocked by its gate${how}: ${gateReasonsText(gate.reasons)}`;
    return stopBeforeChange(gated, event.step, "blocked", failure, now);
  }
  if (step.approval?.state === "approved") return promote(gated, event.step, now);
  if (state.dryRun) return promoteDryRun(gated, event.step, now);
  return requestApproval(gated, event.step, now);
}

/** A dry run creates no proposal: it records the approvals a promotion would need, and goes on. */
function promoteDryRun(state: TrainState, index: number, now: string): TrainDecision {
  const approval: StepApproval = {
    proposalId: promotionProposalId(state.trainId, index),
    state: "pending",
    required: plannedStep(state.plan, index).approvals ?? 1,
    approvals: [],
    dryRun: true,
  };
  return promote(withStep(state, index, { approval }), index, now);
}

/** The step's promotion proposal is asked for (`proposing`); never in a dry run. */
function requestApproval(state: TrainState, index: number, now: string): TrainDecision {
  const planned = plannedStep(state.plan, index);
  return decided(
    withStep(state, index, { phase: "proposing" }),
    [],
    [
      {
        kind: "request-approval",
        step: index,
        service: planned.service,
        proposalId: promotionProposalId(state.trainId, index),
        summary: `release train ${state.plan.train} (${state.trainId}), step ${index + 1}: ${planned.summary}`,
        plan: promotionPlan(planned.change),
        at: now,
      },
    ],
  );
}
