import { createHash } from "node:crypto";
import { decideIncident } from "@safedeploy/core";
import type {
  Incident,
  IncidentDecisionEvent,
  IncidentPolicy,
  ServiceIncidentState,
} from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { Revisioned, TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { IncidentIndex, ServiceRecord } from "../store.js";
import { indexKey } from "./transition.js";

export interface IncidentDeps {
  readonly records: TypedKv<ServiceRecord>;
  /** Incident id → service, so commands can find an incident by its id. */
  readonly index: TypedKv<IncidentIndex>;
  readonly policyFor: (service: string) => IncidentPolicy;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
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
    case "transitioned": {
      const { transition } = event;
      return createEnvelope(
        {
          type: "incidents.transitioned",
          id: messageId("incidents.transitioned", incident.id, transition.to, transition.at),
          service: incident.service,
          data: {
            incidentId: incident.id,
            from: transition.from ?? "detected",
            to: transition.to,
            at: transition.at,
            actor: transition.actor,
            reason: transition.reason,
            ...(transition.link === undefined ? {} : { link: transition.link }),
          },
        },
        context,
      );
    }
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
    const flush = async (entry: Revisioned<ServiceRecord>) => {
      for (const envelope of entry.value.outbox) {
        if (envelope.type === "incidents.opened") {
          await deps.index
            .create(indexKey(envelope.data.incidentId), { service })
            .catch((error: unknown) => {
              if (!(error instanceof KvConflictError)) throw error; // already indexed
            });
        }
        await deps.publish(envelope);
      }
      try {
        await deps.records.update(service, { ...entry.value, outbox: [] }, entry.revision);
      } catch (error) {
        // Someone else moved the record on; whatever is still in its outbox they will publish.
        if (!(error instanceof KvConflictError)) throw error;
      }
    };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const entry = await deps.records.get(service);
      if (entry !== null && entry.value.outbox.length > 0) {
        await flush(entry);
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
      let revision: number;
      try {
        revision =
          entry === null
            ? await deps.records.create(service, next)
            : await deps.records.update(service, next, entry.revision);
      } catch (error) {
        if (error instanceof KvConflictError) continue; // another replica decided first: re-read
        throw error;
      }
      await flush({ value: next, revision });
      return;
    }
    throw new Error(`incident record of ${service} kept changing under ${MAX_ATTEMPTS} attempts`);
  };
