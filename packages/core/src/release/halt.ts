/**
 * How a train ends badly: stopped before a change (blocked, rejected: nothing pushed, nothing to
 * undo), or halted by a failure, which fails the guards of the failing services and proposes the
 * remedy (a revert of the one failing step's service, its canary rollback hook, or manual triage).
 */
import type { TrainAction, TrainDecision, TrainNewEvent } from "./protocol.js";
import { hookCall, withHook } from "./hooks.js";
import { finishedEvent, governanceDetails, stepEvent } from "./published.js";
import { decided, hooksOf, plannedStep, withStep } from "./state.js";
import type { Attribution, TrainState } from "./types.js";

const NONE: Attribution = { kind: "none" };

/** The state ended at `now` with `status`, `reason` and `attribution`. */
function ended(
  state: TrainState,
  status: "halted" | "needs-triage",
  reason: string,
  attribution: Attribution,
  now: string,
): TrainState {
  return { ...state, status, finishedAt: now, reason, attribution };
}

/**
 * Ends the train at a step stopped before its change was requested (`blocked`, `rejected`):
 * nothing was pushed, so nothing is reverted and no guard failed.
 */
export function stopBeforeChange(
  state: TrainState,
  index: number,
  phase: "blocked" | "rejected",
  failure: string,
  now: string,
): TrainDecision {
  const service = plannedStep(state.plan, index).service;
  const reason = `step ${index + 1} (${service}) ${failure}`;
  const halted = ended(withStep(state, index, { phase, failure }), "halted", reason, NONE, now);
  return decided(
    halted,
    [
      stepEvent(halted, index, phase, now, {
        details: { reason, ...governanceDetails(halted.steps[index]) },
      }),
      finishedEvent(halted, "halted", reason, now),
    ],
    [],
  );
}

/** Ends the train at a step whose promotion itself failed: nothing landed, nothing to revert. */
export function stopUnpromoted(
  state: TrainState,
  index: number,
  failure: string,
  now: string,
): TrainDecision {
  const service = plannedStep(state.plan, index).service;
  const reason = `step ${index + 1} (${service}) could not be promoted: ${failure}`;
  const halted = ended(
    withStep(state, index, { phase: "failed", failure }),
    "halted",
    reason,
    NONE,
    now,
  );
  return decided(halted, [finishedEvent(halted, "halted", reason, now)], []);
}

/**
 * What undoes a failing step: a revert proposal of its service's path, beside the canary's
 * rollback hook (called at most once per step); manual triage when the step is ambiguous, or
 * when its change was already in place before this train (reverting "its" change would undo an
 * earlier release).
 */
export function remedy(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
): { readonly state: TrainState; readonly actions: readonly TrainAction[] } {
  if (attribution.kind === "none") return { state, actions: [] };
  if (attribution.kind === "ambiguous") {
    return { state, actions: [{ kind: "manual-triage", reason, evidence: attribution.evidence }] };
  }
  const step = state.steps[attribution.step];
  const inPlace = step?.inPlace ?? null;
  if (inPlace !== null) {
    const why = `${reason}; step ${attribution.step + 1}'s change was already in place before this train (${inPlace}), so the train has nothing of its own to revert`;
    return {
      state,
      actions: [{ kind: "manual-triage", reason: why, evidence: attribution.evidence }],
    };
  }
  const planned = plannedStep(state.plan, attribution.step);
  const revert: TrainAction = {
    kind: "propose-revert",
    step: attribution.step,
    service: attribution.service,
    path: planned.change.path,
    commit: step?.commit ?? null,
    reason,
    evidence: attribution.evidence,
  };
  const { strategy } = planned;
  const called = hooksOf(step).some((h) => h.hook === "rollback");
  if (strategy.kind !== "canary" || strategy.rollbackHook === null || called) {
    return { state, actions: [revert] };
  }
  const rollback = hookCall(state, attribution.step, "rollback", strategy.rollbackHook, now);
  return {
    state:
      rollback.record === undefined ? state : withHook(state, attribution.step, rollback.record),
    actions: rollback.action === undefined ? [revert] : [revert, rollback.action],
  };
}

/**
 * The guards a failure fails: the one failing step's service (also when its change was already
 * in place: the service is failing all the same), or, when ambiguous, every service whose own
 * signals failed (none when only the stack check did), each at its latest failing step. Each
 * service's gate then blocks until its revert is executed or an approver clears it. Asked first,
 * before any revert. A dry run fails none.
 */
export function guardFailures(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
): TrainAction[] {
  if (state.dryRun || attribution.kind === "none") return [];
  const steps = attribution.kind === "step" ? [attribution.step] : attribution.steps;
  const latest = new Map<string, number>();
  for (const index of steps) {
    const service = plannedStep(state.plan, index).service;
    latest.set(service, Math.max(index, latest.get(service) ?? index));
  }
  return [...latest]
    .sort(([, a], [, b]) => a - b)
    .map(([service, step]) => ({
      kind: "fail-guard" as const,
      step,
      service,
      reason,
      evidence: attribution.evidence,
      at: now,
    }));
}

/**
 * What a failure decides, whether the train is running or already finished (a follow-up): the
 * failing services' guards first, then the remedy.
 */
export function failureActions(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
): { readonly state: TrainState; readonly actions: readonly TrainAction[] } {
  const remedied = remedy(state, attribution, reason, now);
  return {
    state: remedied.state,
    actions: [...guardFailures(state, attribution, reason, now), ...remedied.actions],
  };
}

/**
 * Halts the train on a failure: `halted` when the one failing step has a change of its own to
 * revert, else `needs-triage` (ambiguous, or a step whose change was already in place).
 */
export function halt(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
  events: readonly TrainNewEvent[],
): TrainDecision {
  const revertible =
    attribution.kind === "step" && (state.steps[attribution.step]?.inPlace ?? null) === null;
  const outcome = revertible ? "halted" : "needs-triage";
  const halted = ended(state, outcome, reason, attribution, now);
  const failed = failureActions(halted, attribution, reason, now);
  return decided(
    failed.state,
    [...events, finishedEvent(halted, outcome, reason, now)],
    [...failed.actions],
  );
}

/** Halts the train on a step that failed on its own (`failure`): that step is to blame. */
export function haltAtStep(
  state: TrainState,
  index: number,
  failure: string,
  now: string,
): TrainDecision {
  const service = plannedStep(state.plan, index).service;
  const attribution: Attribution = {
    kind: "step",
    step: index,
    service,
    evidence: [`step ${index + 1} ${service}: ${failure}`],
  };
  return halt(state, attribution, `step ${index + 1} (${service}) ${failure}`, now, []);
}
