/** Small pure helpers over a train's state, shared by the deciders of every event. */
import type { PlannedStep, TrainPlan } from "./plan.js";
import type { TrainAction, TrainDecision, TrainNewEvent } from "./protocol.js";
import type { CheckTarget, HookRecord, StepState, TrainState } from "./types.js";

/** `at` plus `ms`, as an ISO 8601 instant. */
export function addMs(at: string, ms: number): string {
  return new Date(Date.parse(at) + ms).toISOString();
}

/** The planned step at `index`; a caller bug (a RangeError) when there is none. */
export function plannedStep(plan: TrainPlan, index: number): PlannedStep {
  const step = plan.steps[index];
  if (step === undefined) throw new RangeError(`train has no step ${index}`);
  return step;
}

/** The state with step `index` updated. */
export function withStep(state: TrainState, index: number, update: Partial<StepState>): TrainState {
  return {
    ...state,
    steps: state.steps.map((step) => (step.index === index ? { ...step, ...update } : step)),
  };
}

/** The hooks a step recorded (none in states saved before hooks existed). */
export function hooksOf(step: StepState | undefined): readonly HookRecord[] {
  return step?.hooks ?? [];
}

/** The check targets of every promoted step up to and including `through`. */
export function checkTargets(state: TrainState, through: number): readonly CheckTarget[] {
  const targets: CheckTarget[] = [];
  for (const step of state.steps) {
    if (step.index > through || step.promotedAt === null) continue;
    const planned = plannedStep(state.plan, step.index);
    targets.push({
      step: step.index,
      service: step.service,
      checks: planned.checks,
      regression: planned.regression,
      deployedAt: step.promotedAt,
    });
  }
  return targets;
}

/** A decision that changed the state. */
export function decided(
  state: TrainState,
  events: readonly TrainNewEvent[],
  actions: readonly TrainAction[],
): TrainDecision {
  return { state, changed: true, events, actions };
}

/** An event that did not fit the state: nothing to save, publish or do. */
export function ignore(state: TrainState, why: string): TrainDecision {
  return { state, events: [], actions: [], changed: false, ignored: why };
}
