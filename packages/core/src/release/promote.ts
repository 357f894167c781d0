/** A step's promotion: requested from the git actuator once its gate passed and it is approved. */
import type { PlannedChange } from "./plan.js";
import type { PromotionPlan, TrainDecision } from "./protocol.js";
import { governanceDetails, stepEvent } from "./published.js";
import { decided, plannedStep, withStep } from "./state.js";
import type { TrainState } from "./types.js";

/** The git actuator's plan for a change (`governance.action-requested`), as its proposal shows it. */
export function promotionPlan(change: PlannedChange): PromotionPlan {
  return change.kind === "image"
    ? { action: "set-image", path: change.path, image: change.image }
    : { action: "patch-manifest", path: change.path, patch: change.patch };
}

/** The step's gate passed and its approvals are complete: its change is requested. */
export function promote(state: TrainState, index: number, now: string): TrainDecision {
  const step = plannedStep(state.plan, index);
  const promoting = withStep(state, index, { phase: "promoting", promotingAt: now });
  return decided(
    promoting,
    [
      stepEvent(promoting, index, "promoting", now, {
        details: governanceDetails(promoting.steps[index]),
      }),
    ],
    [
      {
        kind: "promote",
        step: index,
        service: step.service,
        change: step.change,
        strategy: step.strategy,
      },
    ],
  );
}
