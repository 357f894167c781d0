/**
 * Strategy hooks (canary promote and rollback, blue_green cutover): which hook a step has, and
 * what running one means now. A hook's outcome is recorded once and never taken again.
 */
import type { Hook } from "@safedeploy/schema";
import { hookIdempotencyKey } from "./ids.js";
import type { HookName } from "./ids.js";
import type { PromotionStrategy } from "./plan.js";
import type { TrainAction } from "./protocol.js";
import { hooksOf, plannedStep, withStep } from "./state.js";
import type { HookRecord, TrainState } from "./types.js";

/** The hook a step's promotion calls once its change landed: canary promote, blue_green cutover. */
export function promotionHook(
  strategy: PromotionStrategy,
): { readonly hook: "promote" | "cutover"; readonly spec: Hook } | null {
  if (strategy.kind === "canary" && strategy.promoteHook !== null)
    return { hook: "promote", spec: strategy.promoteHook };
  if (strategy.kind === "blue_green" && strategy.cutoverHook !== null)
    return { hook: "cutover", spec: strategy.cutoverHook };
  return null;
}

/** The hook of a strategy by name, or null when it has none. */
export function plannedHook(strategy: PromotionStrategy, hook: HookName): Hook | null {
  if (hook === "rollback") return strategy.kind === "canary" ? strategy.rollbackHook : null;
  const promotion = promotionHook(strategy);
  return promotion?.hook === hook ? promotion.spec : null;
}

/** Records a hook's outcome, in place of its `requested` record when it had one. */
export function withHook(state: TrainState, index: number, record: HookRecord): TrainState {
  const others = hooksOf(state.steps[index]).filter((h) => h.hook !== record.hook);
  return withStep(state, index, { hooks: [...others, record] });
}

/** What running a hook means now: an action to do, a record to keep, or both. */
export interface HookCall {
  readonly action?: TrainAction;
  readonly record?: HookRecord;
}

/**
 * What running one hook of a step means now: an http hook is a `call-hook` action, a manifest
 * hook an `apply-manifest-hook` action recorded as `requested` (both outcomes come back as
 * `hook-reported`); a dry run calls no http hook, only records it, but does ask the git actuator
 * for a manifest hook's diff (it pushes nothing).
 */
export function hookCall(
  state: TrainState,
  index: number,
  hook: HookName,
  spec: Hook,
  now: string,
): HookCall {
  if ("manifest" in spec) return manifestHookCall(state, index, hook, spec.manifest, now);
  if (state.dryRun) {
    return {
      record: {
        hook,
        kind: "http",
        target: spec.http.url,
        outcome: "skipped",
        status: null,
        detail: `dry run: ${spec.http.method} ${spec.http.url} not called`,
        at: now,
      },
    };
  }
  return { action: httpHookAction(state, index, hook, spec.http) };
}

function manifestHookCall(
  state: TrainState,
  index: number,
  hook: HookName,
  { path, patch }: Extract<Hook, { manifest: unknown }>["manifest"],
  now: string,
): HookCall {
  return {
    action: {
      kind: "apply-manifest-hook",
      step: index,
      service: plannedStep(state.plan, index).service,
      hook,
      actionId: hookIdempotencyKey(state.trainId, index, hook),
      path,
      patch,
    },
    record: {
      hook,
      kind: "manifest",
      target: path,
      outcome: "requested",
      status: null,
      detail: `${state.dryRun ? "dry run: " : ""}patch ${Object.keys(patch).join(", ")} of ${path} through the git actuator`,
      at: now,
    },
  };
}

function httpHookAction(
  state: TrainState,
  index: number,
  hook: HookName,
  http: Extract<Hook, { http: unknown }>["http"],
): TrainAction {
  const planned = plannedStep(state.plan, index);
  return {
    kind: "call-hook",
    step: index,
    service: planned.service,
    hook,
    url: http.url,
    method: http.method,
    headers: http.headers ?? {},
    idempotencyKey: hookIdempotencyKey(state.trainId, index, hook),
    body: {
      train: state.plan.train,
      trainId: state.trainId,
      step: index + 1,
      service: planned.service,
      change: planned.change,
      commit: state.steps[index]?.commit ?? null,
      phase: hook,
    },
  };
}
