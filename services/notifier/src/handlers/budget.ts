import type { Envelope } from "@safedeploy/schema";
import type { NotifierDeps } from "../deps.js";
import { contextKey } from "../store.js";

/** The key of one SLO's burning budget: service and SLO names never hold a newline. */
export const budgetKey = (service: string, slo: string): string =>
  contextKey("budget", `${service}\n${slo}`);

/**
 * A burning (or exhausted) evaluation: keep the newest one per SLO, so an incident's and a
 * proposal's messages can say how much budget is left. Normal SLOs write nothing.
 */
export const onEvaluation =
  (deps: Pick<NotifierDeps, "context">) =>
  async (envelope: Envelope<"budget.evaluated">): Promise<void> => {
    await Promise.all(
      envelope.data.slos
        .filter((slo) => slo.severity !== "normal")
        .map((slo) => {
          const budget = {
            severity: slo.severity,
            budgetRemaining: slo.budgetRemaining,
            evaluatedAt: slo.evaluatedAt,
          };
          return deps.context.mutate(budgetKey(envelope.service, slo.slo), (current) => {
            const known = current?.value.budget;
            // Replicas see evaluations out of order: an older one never overwrites a newer.
            if (
              known !== undefined &&
              Date.parse(known.evaluatedAt) >= Date.parse(slo.evaluatedAt)
            ) {
              return undefined;
            }
            return { budget };
          });
        }),
    );
  };
