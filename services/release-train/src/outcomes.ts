import type { Envelope } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { parseTrainActionId } from "@safedeploy/core";
import type { PromotionOutcome, ProposalDecision } from "./store.js";

type Outcome = Envelope<"governance.action-completed"> | Envelope<"governance.action-failed">;

/**
 * What the git actuator did with a train step's promotion or manifest hook, recorded on the train
 * (the driver feeds it to the state machine). Anyone else's actions, unknown trains and repeats
 * change nothing. A retryable failure is not reported by the actuator (it retries), so a failure
 * here is final for this action.
 */
export const onActionOutcome =
  (deps: TrainDeps) =>
  async (outcome: Outcome): Promise<void> => {
    const action = parseTrainActionId(outcome.data.proposalId);
    if (action === null) return;
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
        : {
            kind: "failed",
            at: outcome.data.at,
            reason: outcome.data.reason,
            ...(outcome.data.unchanged === true ? { unchanged: true } : {}),
          };
    await deps.trains.mutate(action.trainId, (current) => {
      if (current === null) return undefined;
      const record = current.value;
      if (action.hook === null) {
        const key = String(action.step);
        if (record.promotions[key] !== undefined) return undefined;
        return { ...record, promotions: { ...record.promotions, [key]: reported } };
      }
      const key = outcome.data.proposalId;
      if (record.hookOutcomes[key] !== undefined) return undefined;
      return { ...record, hookOutcomes: { ...record.hookOutcomes, [key]: reported } };
    });
    deps.log.info(
      {
        train: action.trainId,
        step: action.step + 1,
        ...(action.hook === null ? {} : { hook: action.hook }),
        outcome: reported.kind,
      },
      action.hook === null ? "promotion reported" : "manifest hook reported",
    );
  };

type Decision = Envelope<"governance.proposal-approved"> | Envelope<"governance.proposal-rejected">;

/** One decision per person and kind (an approval that completed the proposal counts apart). */
const decisionKey = (d: ProposalDecision) =>
  d.kind === "approved" ? `approved:${d.by}:${String(d.approved)}` : `rejected:${d.by}`;

/**
 * A person's decision on a train step's promotion proposal, recorded on the train (the driver
 * feeds it to the state machine once the step awaits approval, whichever replica hears of it
 * first). Anyone else's proposals, hook actions, unknown trains and repeats change nothing.
 * Returns the train it recorded for, or null.
 */
export const onProposalDecision =
  (deps: TrainDeps) =>
  async (decision: Decision): Promise<string | null> => {
    const action = parseTrainActionId(decision.data.proposalId);
    if (action?.hook !== null) return null;
    const recorded: ProposalDecision =
      decision.type === "governance.proposal-approved"
        ? {
            kind: "approved",
            by: decision.data.by,
            at: decision.data.at,
            reason: decision.data.reason,
            required: decision.data.required,
            approved: decision.data.approved,
          }
        : {
            kind: "rejected",
            by: decision.data.by,
            at: decision.data.at,
            reason: decision.data.reason,
          };
    const key = String(action.step);
    const saved = await deps.trains.mutate(action.trainId, (current) => {
      if (current === null) return undefined;
      const record = current.value;
      const known = record.decisions[key] ?? [];
      if (known.some((d) => decisionKey(d) === decisionKey(recorded))) return undefined;
      return { ...record, decisions: { ...record.decisions, [key]: [...known, recorded] } };
    });
    if (saved.entry === null) return null;
    deps.log.info(
      {
        train: action.trainId,
        step: action.step + 1,
        decision: recorded.kind,
        by: recorded.by,
        ...(recorded.kind === "approved" ? { approved: recorded.approved } : {}),
      },
      "promotion proposal decided",
    );
    return action.trainId;
  };
