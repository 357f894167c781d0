/**
 * A step's guard window and its checks: once its change is live the step guards for its window,
 * then every promoted step so far is checked (health, regression, gate); a halting outcome halts
 * the train, else the next step's turn comes (or the final checks, or completion).
 */
import { attributeFailure, reportFailure } from "./attribution.js";
import { worstOutcome } from "./checks.js";
import { complete } from "./follow-up.js";
import { askGate } from "./gate.js";
import { halt } from "./halt.js";
import type { TrainDecision, TrainEvent, TrainNewEvent } from "./protocol.js";
import { reportsSummary, stepEvent } from "./published.js";
import { addMs, checkTargets, decided, hooksOf, ignore, plannedStep, withStep } from "./state.js";
import type { TrainState } from "./types.js";

/** A step whose change landed (and whose promotion hook, if any, answered) starts guarding. */
export function startGuard(
  state: TrainState,
  index: number,
  now: string,
  events: readonly TrainNewEvent[],
): TrainDecision {
  const planned = plannedStep(state.plan, index);
  const guardUntil = addMs(now, planned.guardWindowMs);
  const next = withStep(state, index, { phase: "guarding", guardUntil });
  const step = next.steps[index];
  const hooks = hooksOf(step);
  const details = {
    guardWindow: planned.guardWindow,
    guardUntil,
    ...(hooks.length === 0 ? {} : { hooks }),
  };
  return decided(
    next,
    [...events, stepEvent(next, index, "guarding", now, { commit: step?.commit ?? null, details })],
    [{ kind: "wait", step: index, until: guardUntil }],
  );
}

/** `guard-elapsed` (a guarding step, not before its window ends): its checks run. */
export function onGuardElapsed(
  state: TrainState,
  event: Extract<TrainEvent, { type: "guard-elapsed" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "guarding") {
    return ignore(state, `step ${event.step} is not guarding`);
  }
  if (step.guardUntil !== null && Date.parse(now) < Date.parse(step.guardUntil)) {
    return ignore(state, `step ${event.step} guards until ${step.guardUntil}`);
  }
  const next = withStep(state, event.step, { phase: "checking" });
  return decided(
    next,
    [],
    [{ kind: "run-checks", step: event.step, targets: checkTargets(next, event.step) }],
  );
}

/**
 * `checks-reported` (a checking step, with its own report): a failure halts the train naming the
 * failing step; otherwise the next step asks its gate, or the final checks run, or it completes.
 */
export function onChecksReported(
  state: TrainState,
  event: Extract<TrainEvent, { type: "checks-reported" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "checking") {
    return ignore(state, `step ${event.step} is not checking`);
  }
  if (!event.reports.some((report) => report.step === event.step)) {
    return ignore(state, `no report for step ${event.step}`);
  }
  const reports = event.reports.filter((report) => report.step <= event.step);
  const outcome = worstOutcome(reports.map((r) => reportFailure(r, state.haltOn).outcome));
  const attribution = attributeFailure({ reports, haltOn: state.haltOn });
  const next = withStep(state, event.step, { phase: "checked", checkedAt: now, outcome });
  const checked = stepEvent(next, event.step, "checked", now, {
    commit: step.commit,
    outcome,
    details: reportsSummary(reports),
  });
  if (attribution.kind === "none") return afterChecked(next, event.step, now, checked);
  const reason =
    attribution.kind === "step"
      ? `step ${event.step + 1} guard failed: step ${attribution.step + 1} (${attribution.service}) is failing`
      : `step ${event.step + 1} guard failed and the failing service is ambiguous`;
  return halt(next, attribution, reason, now, [checked]);
}

/** A step checked healthy: the next step's turn, the final checks, or completion. */
function afterChecked(
  state: TrainState,
  index: number,
  now: string,
  checked: TrainNewEvent,
): TrainDecision {
  const following = index + 1;
  if (following < state.steps.length) {
    const gating = askGate(state, following);
    return decided(gating.state, [checked], [gating.action]);
  }
  if (state.plan.finalChecks.length === 0) {
    return complete({ ...state, final: { phase: "checked", outcome: "ok" } }, now, [checked]);
  }
  const checking: TrainState = { ...state, final: { phase: "checking", outcome: null } };
  return decided(
    checking,
    [checked],
    [
      {
        kind: "run-final-checks",
        checks: state.plan.finalChecks,
        targets: checkTargets(checking, state.steps.length - 1),
      },
    ],
  );
}

/** `final-checks-reported` (final checks running): a failure halts the train, else it completes. */
export function onFinalChecksReported(
  state: TrainState,
  event: Extract<TrainEvent, { type: "final-checks-reported" }>,
  now: string,
): TrainDecision {
  if (state.status !== "running" || state.final.phase !== "checking") {
    return ignore(state, "final checks are not running");
  }
  const outcome = worstOutcome([
    ...event.checks.map((check) => check.outcome),
    ...event.reports.map((report) => reportFailure(report, state.haltOn).outcome),
  ]);
  const next: TrainState = { ...state, final: { phase: "checked", outcome } };
  const attribution = attributeFailure({
    reports: event.reports,
    stackChecks: event.checks,
    haltOn: state.haltOn,
  });
  if (attribution.kind === "none") return complete(next, now, []);
  const reason =
    attribution.kind === "step"
      ? `final checks failed: step ${attribution.step + 1} (${attribution.service}) is failing`
      : "final checks failed and the failing service is ambiguous";
  return halt(next, attribution, reason, now, []);
}
