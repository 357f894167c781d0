/**
 * A completed train and its follow-ups: later looks at the whole stack whose failure fails the
 * failing service's guard and proposes its remedy (the train itself stays completed).
 */
import { attributeFailure } from "./attribution.js";
import { failureActions } from "./halt.js";
import type { TrainDecision, TrainEvent, TrainNewEvent } from "./protocol.js";
import { finishedEvent, followUpEvent, reportsSummary } from "./published.js";
import { addMs, checkTargets, decided, ignore } from "./state.js";
import type { FollowUpState, TrainState } from "./types.js";

/** The state with follow-up `index` replaced by `followUp`. */
function withFollowUp(state: TrainState, index: number, followUp: FollowUpState): TrainState {
  return {
    ...state,
    followUps: state.followUps.map((item) => (item.index === index ? followUp : item)),
  };
}

/** Every step promoted and checked: the train completes and its follow-ups are scheduled. */
export function complete(
  state: TrainState,
  now: string,
  events: readonly TrainNewEvent[],
): TrainDecision {
  const followUps: FollowUpState[] = state.plan.followUps.map((followUp, index) => ({
    index,
    after: followUp.after,
    dueAt: addMs(now, followUp.afterMs),
    phase: "scheduled",
    at: null,
    attribution: null,
  }));
  const reason = `all ${state.plan.steps.length} steps promoted and checked`;
  const completed: TrainState = {
    ...state,
    status: "completed",
    finishedAt: now,
    reason,
    followUps,
  };
  return decided(
    completed,
    [
      ...events,
      finishedEvent(completed, "completed", reason, now),
      ...followUps.map((followUp) => followUpEvent(completed, followUp, "scheduled", now)),
    ],
    followUps.map((followUp) => ({
      kind: "schedule-follow-up" as const,
      index: followUp.index,
      dueAt: followUp.dueAt,
    })),
  );
}

/** `follow-up-due` (a scheduled follow-up, not before its time): the stack is checked again. */
export function onFollowUpDue(
  state: TrainState,
  event: Extract<TrainEvent, { type: "follow-up-due" }>,
  now: string,
): TrainDecision {
  const followUp = state.followUps[event.index];
  if (followUp?.phase !== "scheduled") {
    return ignore(state, `follow-up ${event.index} is not scheduled`);
  }
  if (Date.parse(now) < Date.parse(followUp.dueAt)) {
    return ignore(state, `follow-up ${event.index} is due at ${followUp.dueAt}`);
  }
  const next = withFollowUp(state, event.index, { ...followUp, phase: "running" });
  return decided(
    next,
    [],
    [
      {
        kind: "run-follow-up",
        index: event.index,
        checks: state.plan.finalChecks,
        targets: checkTargets(next, state.steps.length - 1),
      },
    ],
  );
}

/**
 * `follow-up-reported` (a running follow-up): passed, or failed with the step it is attributed
 * to, whose service's guard fails and whose remedy is proposed.
 */
export function onFollowUpReported(
  state: TrainState,
  event: Extract<TrainEvent, { type: "follow-up-reported" }>,
  now: string,
): TrainDecision {
  const followUp = state.followUps[event.index];
  if (followUp?.phase !== "running") {
    return ignore(state, `follow-up ${event.index} is not running`);
  }
  const { checks, reports } = event;
  const attribution = attributeFailure({ reports, stackChecks: checks, haltOn: state.haltOn });
  const phase = attribution.kind === "none" ? "passed" : "failed";
  const updated: FollowUpState = { ...followUp, phase, at: now, attribution };
  const next = withFollowUp(state, event.index, updated);
  const details = { ...reportsSummary(reports), stack: checks, attribution };
  const published = followUpEvent(next, updated, phase, now, details);
  if (attribution.kind === "none") return decided(next, [published], []);
  const reason =
    attribution.kind === "step"
      ? `follow-up +${followUp.after} failed: step ${attribution.step + 1} (${attribution.service}) is failing`
      : `follow-up +${followUp.after} failed and the failing service is ambiguous`;
  const failed = failureActions(next, attribution, reason, now);
  return decided(failed.state, [published], failed.actions);
}
