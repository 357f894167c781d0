/**
 * A step's change lands: promoted (or already in place, or failed), live once its `deployedWhen`
 * probe passes, then its strategy's promotion hook runs before the guard window starts.
 */
import type { Hook } from "@safedeploy/schema";
import { haltAtStep, stopUnpromoted } from "./halt.js";
import { hookCall, plannedHook, promotionHook, withHook } from "./hooks.js";
import { startGuard } from "./guard.js";
import type { TrainDecision, TrainEvent, TrainNewEvent } from "./protocol.js";
import { stepEvent } from "./published.js";
import { addMs, decided, hooksOf, ignore, plannedStep, withStep } from "./state.js";
import type { HookRecord, TrainState } from "./types.js";

/** The longest wait between two `deployedWhen` probes of a `deploying` step. */
export const DEPLOY_PROBE_INTERVAL_MS = 5_000;

/**
 * How long to wait before probing again after `failed` probes that said "not yet": 1 s, 2 s,
 * 4 s, then every {@link DEPLOY_PROBE_INTERVAL_MS} (a sync usually lands within seconds).
 */
export function deployProbeDelayMs(failed: number): number {
  return Math.min(DEPLOY_PROBE_INTERVAL_MS, 1_000 * 2 ** Math.max(0, failed - 1));
}

/** Whether the step is `phase` in a running train. */
function stepIs(state: TrainState, index: number, phase: "promoting" | "deploying"): boolean {
  return state.status === "running" && state.steps[index]?.phase === phase;
}

/**
 * A step whose change is live (`promotedAt` set): its promotion hook runs, or, without one, its
 * guard window starts.
 */
function afterDeployed(
  state: TrainState,
  index: number,
  now: string,
  events: readonly TrainNewEvent[],
): TrainDecision {
  const hook = promotionHook(plannedStep(state.plan, index).strategy);
  if (hook === null) return startGuard(state, index, now, events);
  const call = hookCall(state, index, hook.hook, hook.spec, now);
  const recorded = call.record === undefined ? state : withHook(state, index, call.record);
  if (call.action === undefined) return startGuard(recorded, index, now, events);
  return decided(withStep(recorded, index, { phase: "hooking" }), events, [call.action]);
}

/**
 * The step's change is in Git (`commit`), or was already in place (`inPlace`): live at once, or,
 * with a `deployedWhen`, once its probe passes. A dry run pushes nothing, so nothing ever goes
 * live: it does not wait.
 */
function landed(
  state: TrainState,
  index: number,
  change: { readonly commit: string | null; readonly inPlace: string | null },
  now: string,
): TrainDecision {
  if (!stepIs(state, index, "promoting")) return ignore(state, `step ${index} is not promoting`);
  const { commit, inPlace } = change;
  const promoted = stepEvent(state, index, "promoted", now, {
    commit,
    ...(inPlace === null ? {} : { details: { inPlace } }),
  });
  const recorded = withStep(state, index, { commit, inPlace });
  const planned = plannedStep(state.plan, index);
  const deployedWhen = planned.deployedWhen ?? null;
  if (deployedWhen === null || state.dryRun) {
    return afterDeployed(withStep(recorded, index, { promotedAt: now }), index, now, [promoted]);
  }
  return decided(
    withStep(recorded, index, {
      phase: "deploying",
      deployDeadline: addMs(now, deployedWhen.withinMs),
      nextProbeAt: null,
    }),
    [promoted],
    [{ kind: "probe-deployed", step: index, service: planned.service, check: deployedWhen.check }],
  );
}

/** `step-promoted` (a promoting step): its change is committed. */
export function onStepPromoted(
  state: TrainState,
  event: Extract<TrainEvent, { type: "step-promoted" }>,
  now: string,
): TrainDecision {
  return landed(state, event.step, { commit: event.commit, inPlace: null }, now);
}

/** `step-in-place` (a promoting step): checked as if promoted, with nothing of its own to revert. */
export function onStepInPlace(
  state: TrainState,
  event: Extract<TrainEvent, { type: "step-in-place" }>,
  now: string,
): TrainDecision {
  return landed(state, event.step, { commit: null, inPlace: event.reason }, now);
}

/** `step-failed` (a promoting step): the train halts; nothing landed, so nothing is reverted. */
export function onStepFailed(
  state: TrainState,
  event: Extract<TrainEvent, { type: "step-failed" }>,
  now: string,
): TrainDecision {
  if (!stepIs(state, event.step, "promoting")) {
    return ignore(state, `step ${event.step} is not promoting`);
  }
  return stopUnpromoted(state, event.step, event.reason, now);
}

/** `deploy-probe-due` (a deploying step whose next probe time passed): probe again. */
export function onDeployProbeDue(
  state: TrainState,
  event: Extract<TrainEvent, { type: "deploy-probe-due" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (step === undefined || !stepIs(state, event.step, "deploying")) {
    return ignore(state, `step ${event.step} is not deploying`);
  }
  if (step.nextProbeAt === null || step.nextProbeAt === undefined || now < step.nextProbeAt) {
    return ignore(state, `step ${event.step} has no probe due`);
  }
  const planned = plannedStep(state.plan, event.step);
  if (planned.deployedWhen === null || planned.deployedWhen === undefined) {
    return ignore(state, `step ${event.step} has no deployedWhen`);
  }
  const { check } = planned.deployedWhen;
  return decided(
    withStep(state, event.step, { nextProbeAt: null }),
    [],
    [{ kind: "probe-deployed", step: event.step, service: planned.service, check }],
  );
}

/**
 * `deploy-probed` (a deploying step): live → that moment is its deploy time; not yet → probe
 * again later, backing off; not live by its deadline → the step failed and the train halts.
 */
export function onDeployProbed(
  state: TrainState,
  event: Extract<TrainEvent, { type: "deploy-probed" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (step === undefined || !stepIs(state, event.step, "deploying")) {
    return ignore(state, `step ${event.step} is not deploying`);
  }
  const probe = event.result;
  if (probe.outcome === "ok") {
    const live = withStep(state, event.step, {
      promotedAt: now,
      nextProbeAt: null,
      deployProbe: probe,
    });
    const deployed = stepEvent(live, event.step, "deployed", now, {
      commit: step.commit,
      details: { probe: probe.url },
    });
    return afterDeployed(live, event.step, now, [deployed]);
  }
  const deadline = step.deployDeadline ?? null;
  if (deadline !== null && now >= deadline) {
    const within = plannedStep(state.plan, event.step).deployedWhen?.within ?? "its deadline";
    const why = probe.failures.map((f) => f.message).join("; ") || `outcome ${probe.outcome}`;
    const failure = `not deployed within ${within}: GET ${probe.url}: ${why}`;
    const update = { phase: "failed" as const, failure, nextProbeAt: null, deployProbe: probe };
    return haltAtStep(withStep(state, event.step, update), event.step, failure, now);
  }
  const failed = (step.deployProbesFailed ?? 0) + 1;
  const nextProbeAt = addMs(now, deployProbeDelayMs(failed));
  const update = { nextProbeAt, deployProbe: probe, deployProbesFailed: failed };
  return decided(withStep(state, event.step, update), [], []);
}

/** A hook's outcome as the state records it; a dry run's manifest hook only computed its diff. */
function hookRecord(
  state: TrainState,
  event: Extract<TrainEvent, { type: "hook-reported" }>,
  spec: Hook,
  now: string,
): HookRecord {
  return {
    hook: event.hook,
    kind: "manifest" in spec ? "manifest" : "http",
    target: "http" in spec ? spec.http.url : spec.manifest.path,
    outcome: !event.ok ? "failed" : state.dryRun ? "skipped" : "ok",
    status: event.status,
    detail: event.detail,
    at: now,
    ...(event.change === undefined ? {} : { change: event.change }),
  };
}

/**
 * `hook-reported`: what a step's hook gave, recorded once (a hook whose outcome is recorded is
 * never taken again; a manifest hook only once it was requested). A rollback hook, called beside
 * a revert after the train stopped, is only recorded; a promotion hook's answer starts the guard
 * window, or, failed, fails the step and halts the train.
 */
export function onHookReported(
  state: TrainState,
  event: Extract<TrainEvent, { type: "hook-reported" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (step === undefined) return ignore(state, `train has no step ${event.step}`);
  const earlier = hooksOf(step).find((h) => h.hook === event.hook);
  const which = `the ${event.hook} hook of step ${event.step}`;
  if (earlier !== undefined && earlier.outcome !== "requested") {
    return ignore(state, `${which} was already reported`);
  }
  const spec = plannedHook(plannedStep(state.plan, event.step).strategy, event.hook);
  if (spec === null) return ignore(state, `step ${event.step} has no ${event.hook} hook`);
  if ("manifest" in spec && earlier === undefined)
    return ignore(state, `${which} was not requested`);
  const hooked = withHook(state, event.step, hookRecord(state, event, spec, now));
  if (event.hook === "rollback") {
    if (state.status === "running") return ignore(state, "the train did not halt");
    return decided(hooked, [], []);
  }
  if (state.status !== "running" || step.phase !== "hooking") {
    return ignore(state, `step ${event.step} is not calling its ${event.hook} hook`);
  }
  if (event.ok) return startGuard(hooked, event.step, now, []);
  const failure =
    "http" in spec
      ? `${event.hook} hook ${spec.http.method} ${spec.http.url} failed: ${event.detail}`
      : `${event.hook} hook (a patch of ${spec.manifest.path}) failed: ${event.detail}`;
  const failed = withStep(hooked, event.step, { phase: "failed", failure });
  return haltAtStep(failed, event.step, failure, now);
}
