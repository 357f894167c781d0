import { createHash } from "node:crypto";
import type {
  Incident,
  IncidentDecision,
  IncidentDecisionEvent,
  ServiceIncidentState,
  Transition,
  TransitionResult,
} from "@safedeploy/core";
import { KvConflictError, mutate } from "@safedeploy/jetstream";
import type { Outbox, Revisioned, TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { IncidentIndex, ServiceRecord } from "./store.js";

/** What writing an incident record needs: the records, the id index, and the bus. */
export interface RecordDeps {
  readonly records: TypedKv<ServiceRecord>;
  readonly index: TypedKv<IncidentIndex>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
}

/** Where the keys of the id index begin (the other keys are services). */
export const INDEX_KEY_PREFIX = "id.";
/** The KV key under which an incident's service is found. */
export const indexKey = (incidentId: string) => `${INDEX_KEY_PREFIX}${incidentId}`;

/** The event of one transition; its id names the incident, target state and time. */
export function transitionedEvent(
  incident: { readonly id: string; readonly service: string },
  transition: Transition,
  context: Parameters<typeof createEnvelope>[1],
): Envelope<"incidents.transitioned"> {
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

/**
 * Publishes a record's outbox (indexing opened incidents first, so commands can find them) and
 * clears it. Every event is deduplicated by its id, so publishing again after a crash is harmless;
 * if the record moved on meanwhile, whoever moved it publishes what is still there.
 */
export async function flushOutbox(
  deps: RecordDeps,
  service: string,
  entry: Revisioned<ServiceRecord>,
): Promise<void> {
  for (const envelope of entry.value.outbox) {
    if (envelope.type === "incidents.opened") {
      await deps.index
        .create(indexKey(envelope.data.incidentId), { service })
        .catch(ignoreConflict);
    }
    await deps.publish(envelope);
  }
  await deps.records
    .update(service, { ...entry.value, outbox: [] }, entry.revision)
    .catch(ignoreConflict);
}

/** The record's outbox: events decided with it, published after it was written. */
function outbox(deps: RecordDeps, service: string): Outbox<ServiceRecord> {
  return {
    pending: (record) => record.outbox.length > 0,
    flush: (entry) => flushOutbox(deps, service, entry),
  };
}

function ignoreConflict(error: unknown): void {
  if (!(error instanceof KvConflictError)) throw error;
}

/** A stable incident id derived from the message that opened it, so a retried decision reuses it. */
export function incidentIdFor(causeId: string): string {
  return `INC-${createHash("sha256").update(causeId).digest("hex").slice(0, 12).toUpperCase()}`;
}

const EMPTY: ServiceRecord = { slos: {}, incident: null, healthySince: null, outbox: [] };
/** A burst of evaluations of one service from many replicas may collide many times. */
const MAX_ATTEMPTS = 50;

function toState(record: ServiceRecord): ServiceIncidentState {
  return {
    slos: record.slos,
    incident: record.incident as Incident | null,
    healthySince: record.healthySince,
    burningSince: record.burningSince ?? null,
    ...(record.policy === undefined ? {} : { policy: record.policy }),
  };
}

/** The event a decision calls for, caused by `cause` at the time of its evidence. */
function decisionEnvelope(event: IncidentDecisionEvent, cause: Envelope, time: string): Envelope {
  const context = { source: "incident", time, causedBy: cause };
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
            origin: incident.origin,
            severity: incident.severity,
            class: incident.class,
            slo: incident.slo,
            openedAt: incident.openedAt,
            causeId: event.causeId,
            reason: event.reason,
            burnBegan: event.burnBegan,
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
 * Folds one message into a service's incident record with compare-and-set, so any number of
 * replicas keep one active incident per service; then publishes the decided events from the
 * record's outbox and clears it. A record left with an outbox by a crash is flushed first.
 */
export async function foldIntoRecord(
  deps: RecordDeps,
  service: string,
  cause: Envelope,
  evidenceTime: string,
  decide: (state: ServiceIncidentState) => IncidentDecision,
): Promise<void> {
  await mutate(
    deps.records,
    service,
    (current) => {
      const decision = decide(toState(current?.value ?? EMPTY));
      if (!decision.changed) return { next: undefined, result: undefined };
      const next = {
        ...decision.state,
        outbox: decision.events.map((event) => decisionEnvelope(event, cause, evidenceTime)),
      } as ServiceRecord;
      return { next, result: undefined };
    },
    { maxAttempts: MAX_ATTEMPTS, outbox: outbox(deps, service) },
  );
}

/**
 * Moves the incident `incidentId`, if it is still its service's current one, by the transition
 * `move` decides for it (null: none), with compare-and-set; the transition's event goes out
 * through the record's outbox. Resolves what `move` answered for the incident as written (or
 * `missing` when the incident is not current).
 */
export async function transitionCurrent<R>(
  deps: RecordDeps,
  service: string,
  incidentId: string,
  move: (incident: Incident) => {
    readonly transition: TransitionResult | null;
    readonly context: Parameters<typeof createEnvelope>[1];
    readonly result: (moved: Incident | null) => R;
  },
): Promise<R | "missing"> {
  const { result } = await mutate<ServiceRecord, R | "missing">(
    deps.records,
    service,
    (entry) => {
      const incident = (entry?.value.incident ?? null) as Incident | null;
      if (entry === null || incident?.id !== incidentId)
        return { next: undefined, result: "missing" };
      const decided = move(incident);
      if (!decided.transition?.ok) {
        return { next: undefined, result: decided.result(null) };
      }
      const moved = decided.transition;
      const event = transitionedEvent(incident, moved.transition, decided.context);
      const next = {
        ...entry.value,
        incident: moved.incident,
        outbox: [...entry.value.outbox, event],
      } as ServiceRecord;
      return { next, result: decided.result(moved.incident) };
    },
    { outbox: outbox(deps, service) },
  );
  return result;
}
