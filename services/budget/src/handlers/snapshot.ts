import { evaluateSnapshot } from "@safedeploy/core";
import type { BurnRule } from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";

/** What the budget handler needs from its shell. */
export interface BudgetDeps {
  /** The burn-rate rules of the service's effective policy, and its promotion safety margin. */
  readonly targetFor: (service: string) => {
    readonly rules: readonly BurnRule[];
    readonly safetyMargin: number;
  };
  readonly publish: (envelope: Envelope<"budget.evaluated">) => Promise<unknown>;
}

/**
 * Turns one service's SLI snapshot into its budget evaluation, every SLO at once. Stateless: the
 * evaluation id derives from the snapshot id, so redelivery and any number of replicas publish it
 * once.
 */
export const onSnapshot =
  (deps: BudgetDeps) =>
  async (snapshot: Envelope<"metrics.snapshot">): Promise<void> => {
    const { data } = snapshot;
    const { rules, safetyMargin } = deps.targetFor(snapshot.service);
    await deps.publish(
      createEnvelope(
        {
          type: "budget.evaluated",
          id: messageId("budget.evaluated", snapshot.id),
          service: snapshot.service,
          data: {
            snapshotId: snapshot.id,
            evaluatedAt: data.evaluatedAt,
            slos: evaluateSnapshot(data, rules, safetyMargin),
          },
        },
        { source: "budget", time: data.evaluatedAt, causedBy: snapshot },
      ),
    );
  };
