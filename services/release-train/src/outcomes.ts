import type { Envelope } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { parsePromotionId } from "./effects.js";
import type { PromotionOutcome } from "./store.js";

type Outcome = Envelope<"governance.action-completed"> | Envelope<"governance.action-failed">;

/**
 * What the git actuator did with a train step's promotion, recorded on the train (the driver
 * feeds it to the state machine). Anyone else's actions, unknown trains and repeats change
 * nothing. A retryable failure is not reported by the actuator (it retries), so a failure here is
 * final for this promotion.
 */
export const onActionOutcome =
  (deps: TrainDeps) =>
  async (outcome: Outcome): Promise<void> => {
    const promotion = parsePromotionId(outcome.data.proposalId);
    if (promotion === null) return;
    const reported: PromotionOutcome =
      outcome.type === "governance.action-completed"
        ? {
            kind: "completed",
            at: outcome.data.at,
            branch: outcome.data.branch,
            commit: outcome.data.commit,
            prUrl: outcome.data.prUrl,
            diff: outcome.data.diff,
            dryRun: outcome.data.dryRun,
          }
        : { kind: "failed", at: outcome.data.at, reason: outcome.data.reason };
    const key = String(promotion.step);
    await deps.trains.mutate(promotion.trainId, (current) => {
      if (current === null || current.value.promotions[key] !== undefined) return undefined;
      return { ...current.value, promotions: { ...current.value.promotions, [key]: reported } };
    });
    deps.log.info(
      { train: promotion.trainId, step: promotion.step + 1, outcome: reported.kind },
      "promotion reported",
    );
  };
