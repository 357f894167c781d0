import { createHash } from "node:crypto";
import { decideIncident } from "@safedeploy/core";
import type {
  Incident,
  IncidentDecisionEvent,
  IncidentPolicy,
  ServiceIncidentState,
} from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { commitRecord, flushOutbox, transitionedEvent } from "../record.js";
import type { RecordDeps } from "../record.js";
import type { ServiceRecord } from "../store.js";

export interface IncidentDeps extends RecordDeps {
  readonly policyFor: (service: string) => IncidentPolicy;
}

const EMPTY: ServiceRecord = { slos: {}, incident: null, healthySince: null, outbox: [] };
const MAX_ATTEMPTS = 50;

/** A stable incident id derived from the evaluation that opened it, so a retried decision reuses it. */
export function incidentIdFor(causeId: string): string {
  return `INC-${createHash("sha256").update(causeId).digest("hex").slice(0, 12).toUpperCase()}`;
}

function toState(record: ServiceRecord): ServiceIncidentState {
  return {
    slos: record.slos,
    incident: record.incident as Incident | null,
    healthySince: record.healthySince,
  };
}

function toEnvelope(event: IncidentDecisionEvent, cause: Envelope<"budget.evaluated">): Envelope {
  const context = { source: "incident", time: cause.data.evaluatedAt, causedBy: cause };
  const { incident } = event;
  switch (event.kind) {
    case "opened":
      return createEnvelope(
        {
          type: "incidents.opened",
          id: messageId("incidents.opened", incident.id),
          service: incident.service,
          data: {
            incidentId: incident.id,
            severity: incident.severity,
            class: incident.class,
            slo: incident.slo,
            openedAt: incident.openedAt,
            causeId: event.causeId,
            reason: event.reason,
          },
        },
        context,
      );
    case "escalated":
      return createEnvelope(
        {
          type: "incidents.escalated",
          id: messageId("incidents.escalated", incident.id, incident.class),
          service: incident.service,
          data: {
            incidentId: incident.id,
            severity: incident.severity,
            class: incident.class,
            previousClass: event.previousClass,
            at: incident.updatedAt,
            causeId: event.causeId,
          },
        },
        context,
      );
    case "transitioned":
      return transitionedEvent(incident, event.transition, context);
  }
}

/**
 * Folds a budget evaluation into the service's incident record with compare-and-set, so any
 * number of replicas keep one active incident per service; then publishes the decided events
 * from the record's outbox and clears it.
 */
export const onEvaluation =
  (deps: IncidentDeps) =>
  async (evaluation: Envelope<"budget.evaluated">): Promise<void> => {
    const service = evaluation.service;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const entry = await deps.records.get(service);
      if (entry !== null && entry.value.outbox.length > 0) {
        await flushOutbox(deps, service, entry);
        continue;
      }
      const record = entry?.value ?? EMPTY;
      const decision = decideIncident(
        toState(record),
        {
          id: evaluation.id,
          service,
          slo: evaluation.data.slo,
          objective: evaluation.data.objective,
          severity: evaluation.data.severity,
          evaluatedAt: evaluation.data.evaluatedAt,
        },
        deps.policyFor(service),
        () => incidentIdFor(evaluation.id),
      );
      if (!decision.changed) return;
      const next: ServiceRecord = {
        ...decision.state,
        outbox: decision.events.map((event) => toEnvelope(event, evaluation)),
      } as ServiceRecord;
      // Lost the race to another replica: re-read and decide again.
      if (await commitRecord(deps, service, entry, next)) return;
    }
    throw new Error(`incident record of ${service} kept changing under ${MAX_ATTEMPTS} attempts`);
  };
