/** The events a train publishes (`governance.train-*`, `governance.follow-up`), ids derived. */
import { messageId } from "@safedeploy/schema";
import type { NewEvent } from "@safedeploy/schema";
import type { CheckOutcome } from "./checks.js";
import type { TrainNewEvent } from "./protocol.js";
import { plannedStep } from "./state.js";
import type { FollowUpState, StepReport, StepState, TrainState } from "./types.js";

/** The phases a `governance.train-step` event reports. */
export type ReportedPhase =
  | "promoting"
  | "promoted"
  | "deployed"
  | "guarding"
  | "checked"
  | "awaiting-approval"
  | "blocked"
  | "rejected";

/** The phase on the wire: the event's enum has no word yet for a step stopped before its change. */
const WIRE_PHASE: Readonly<
  Record<ReportedPhase, NewEvent<"governance.train-step">["data"]["phase"]>
> = {
  promoting: "promoting",
  promoted: "promoted",
  deployed: "deployed",
  guarding: "guarding",
  checked: "checked",
  "awaiting-approval": "awaiting-approval",
  blocked: "blocked",
  rejected: "rejected",
};

/** `governance.train-step` for one step reaching `phase`, once per (train, step, phase). */
export function stepEvent(
  state: TrainState,
  step: number,
  phase: ReportedPhase,
  now: string,
  extra: {
    readonly commit?: string | null;
    readonly outcome?: CheckOutcome | null;
    readonly details?: Record<string, unknown>;
  } = {},
): TrainNewEvent {
  const planned = plannedStep(state.plan, step);
  const wire = WIRE_PHASE[phase];
  return {
    type: "governance.train-step",
    id: messageId("governance.train-step", state.trainId, step, phase),
    service: planned.service,
    data: {
      trainId: state.trainId,
      step,
      phase: wire,
      at: now,
      commit: extra.commit ?? null,
      outcome: extra.outcome ?? null,
      details: { ...(wire === phase ? {} : { phase }), ...extra.details },
    },
  };
}

/** `governance.train-finished`, once per train. */
export function finishedEvent(
  state: TrainState,
  outcome: "completed" | "halted" | "needs-triage",
  reason: string,
  now: string,
): TrainNewEvent {
  return {
    type: "governance.train-finished",
    id: messageId("governance.train-finished", state.trainId),
    service: state.plan.train,
    data: { trainId: state.trainId, at: now, outcome, reason },
  };
}

/** `governance.follow-up` for one follow-up reaching `phase`. */
export function followUpEvent(
  state: TrainState,
  followUp: FollowUpState,
  phase: "scheduled" | "passed" | "failed",
  now: string,
  details: Record<string, unknown> = {},
): TrainNewEvent {
  return {
    type: "governance.follow-up",
    id: messageId("governance.follow-up", state.trainId, followUp.index, phase),
    service: state.plan.train,
    data: {
      trainId: state.trainId,
      dueAt: followUp.dueAt,
      after: followUp.after,
      phase,
      at: now,
      attributedStep: followUp.attribution?.kind === "step" ? followUp.attribution.step : null,
      details,
    },
  };
}

/** The gate and approval of a step as its `promoting` (or stopped) event reports them. */
export function governanceDetails(step: StepState | undefined): Record<string, unknown> {
  const gate = step?.gate ?? null;
  const approval = step?.approval ?? null;
  return {
    ...(gate === null ? {} : { gate: { verdict: gate.verdict, reasons: gate.reasons } }),
    ...(approval === null
      ? {}
      : {
          approval: {
            proposalId: approval.proposalId,
            state: approval.state,
            required: approval.required,
            approvals: approval.approvals.map((a) => a.by),
            ...(approval.dryRun === true ? { dryRun: true } : {}),
          },
        }),
  };
}

/** The reports of a check, as a `checked` or follow-up event details them. */
export function reportsSummary(reports: readonly StepReport[]): Record<string, unknown> {
  return {
    reports: reports.map((report) => ({
      step: report.step,
      service: report.service,
      checks: report.checks.map((check) => ({
        url: check.url,
        outcome: check.outcome,
        failures: check.failures,
      })),
      regression: report.regression,
      gate: report.gate ?? null,
    })),
  };
}
