import { decideIncidentOnEvaluation } from "@safedeploy/core";
import type { IncidentPolicy } from "@safedeploy/core";
import type { Envelope } from "@safedeploy/schema";
import { foldIntoRecord, incidentIdFor } from "../record.js";
import type { RecordDeps } from "../record.js";

export interface IncidentDeps extends RecordDeps {
  readonly policyFor: (service: string) => IncidentPolicy;
}

/**
 * Folds a service's budget evaluation (every SLO) into its incident record with compare-and-set,
 * so any number of replicas keep one active incident per service; then publishes the decided
 * events from the record's outbox and clears it.
 */
export const onEvaluation =
  (deps: IncidentDeps) =>
  (evaluation: Envelope<"budget.evaluated">): Promise<void> =>
    foldIntoRecord(deps, evaluation.service, evaluation, evaluation.data.evaluatedAt, (state) =>
      decideIncidentOnEvaluation(
        state,
        { id: evaluation.id, service: evaluation.service, slos: evaluation.data.slos },
        deps.policyFor(evaluation.service),
        () => incidentIdFor(evaluation.id),
      ),
    );
