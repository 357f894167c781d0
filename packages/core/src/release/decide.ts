/**
 * The train's state machine: `startTrain`, then `decideTrain` for every event, one named decider
 * per event type (DESIGN.md invariant 9: every step through its gate and approvals).
 */
import { messageId } from "@safedeploy/schema";
import { onApprovalAnswered, onPromotionApproved, onPromotionRejected } from "./approval.js";
import {
  onDeployProbeDue,
  onDeployProbed,
  onHookReported,
  onStepFailed,
  onStepInPlace,
  onStepPromoted,
} from "./deploy.js";
import { onFollowUpDue, onFollowUpReported } from "./follow-up.js";
import { askGate, onGateAnswered } from "./gate.js";
import { onChecksReported, onFinalChecksReported, onGuardElapsed } from "./guard.js";
import type { HaltOn } from "./checks.js";
import type { TrainPlan } from "./plan.js";
import type { TrainDecision, TrainEvent } from "./protocol.js";
import { decided } from "./state.js";
import type { TrainState } from "./types.js";

/** The decider of one event type: the train's next state for that event at `now`. */
export type TrainDecider<T extends TrainEvent["type"]> = (
  state: TrainState,
  event: Extract<TrainEvent, { type: T }>,
  now: string,
) => TrainDecision;

/** One decider per event type; the type makes a missing one a compile error. */
export type TrainDeciders = { readonly [T in TrainEvent["type"]]: TrainDecider<T> };

/** The table `decideTrain` dispatches on. */
export const TRAIN_DECIDERS: TrainDeciders = {
  "gate-answered": onGateAnswered,
  "approval-answered": onApprovalAnswered,
  "promotion-approved": onPromotionApproved,
  "promotion-rejected": onPromotionRejected,
  "step-promoted": onStepPromoted,
  "step-in-place": onStepInPlace,
  "step-failed": onStepFailed,
  "deploy-probe-due": onDeployProbeDue,
  "deploy-probed": onDeployProbed,
  "hook-reported": onHookReported,
  "guard-elapsed": onGuardElapsed,
  "checks-reported": onChecksReported,
  "final-checks-reported": onFinalChecksReported,
  "follow-up-due": onFollowUpDue,
  "follow-up-reported": onFollowUpReported,
};

/**
 * The train's next state for one event at `now`: deterministic, and replay-safe (an event that
 * does not fit the current phase, such as the same event applied twice, changes nothing). Step
 * n+1 is promoted only once step n was checked without a halting outcome, its service's gate
 * passed and its promotion proposal has its approvals (DESIGN.md invariant 9); a gate that does
 * not pass or a rejection ends the train with nothing pushed. A halting outcome fails the guard
 * of the failing services (their gates block) and ends the train with a revert of the one
 * failing service's step, or manual triage when ambiguous.
 */
export function decideTrain(state: TrainState, event: TrainEvent, now: string): TrainDecision {
  const decide = TRAIN_DECIDERS[event.type] as TrainDecider<TrainEvent["type"]>;
  return decide(state, event, now);
}

/**
 * Starts a train: every step pending but the first, whose gate is asked. Emits train-started.
 */
export function startTrain(input: {
  readonly trainId: string;
  readonly plan: TrainPlan;
  readonly dryRun: boolean;
  readonly haltOn?: HaltOn;
  readonly now: string;
}): TrainDecision {
  const { trainId, plan, now } = input;
  const initial: TrainState = {
    trainId,
    plan,
    dryRun: input.dryRun,
    haltOn: input.haltOn ?? "fatal",
    startedAt: now,
    status: "running",
    steps: plan.steps.map((step) => ({
      index: step.index,
      service: step.service,
      phase: "pending",
      commit: null,
      promotingAt: null,
      promotedAt: null,
      guardUntil: null,
      checkedAt: null,
      outcome: null,
      failure: null,
      hooks: [],
      gate: null,
      approval: null,
    })),
    final: { phase: "pending", outcome: null },
    finishedAt: null,
    reason: null,
    attribution: null,
    followUps: [],
  };
  const gating = askGate(initial, 0);
  const started = {
    type: "governance.train-started" as const,
    id: messageId("governance.train-started", trainId),
    service: plan.train,
    data: {
      trainId,
      train: plan.train,
      at: now,
      dryRun: input.dryRun,
      steps: plan.steps.map((step) => ({ service: step.service, change: step.summary })),
    },
  };
  return decided(gating.state, [started], [gating.action]);
}
