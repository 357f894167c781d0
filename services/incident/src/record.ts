import { createHash } from "node:crypto";
import type {
  Incident,
  IncidentDecision,
  IncidentDecisionEvent,
  ServiceIncidentState,
  Transition,
} from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { Revisioned, TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { IncidentIndex, ServiceRecord } from "./store.js";

/** What writing an incident record needs: the records, the id index, and the bus. */
export interface RecordDeps {
  readonly records: TypedKv<ServiceRecord>;
  readonly index: TypedKv<IncidentIndex>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
}

/** The KV key under which an incident's service is found. */
export const indexKey = (incidentId: string) => `id.${incidentId}`;

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

/**
 * Writes `next` over `current` by compare-and-set (creating the key when `current` is null), then
 * flushes its outbox. Resolves false when another replica wrote first: re-read and decide again.
 */
export async function commitRecord(
  deps: RecordDeps,
  service: string,
  current: Revisioned<ServiceRecord> | null,
  next: ServiceRecord,
): Promise<boolean> {
  let revision: number;
  try {
    revision =
      current === null
        ? await deps.records.create(service, next)
        : await deps.records.update(service, next, current.revision);
  } catch (error) {
    if (error instanceof KvConflictError) return false;
    throw error;
  }
  await flushOutbox(deps, service, { value: next, revision });
  return true;
}

function ignoreConflict(error: unknown): void {
  if (!(error instanceof KvConflictError)) throw error;
}

/** A stable incident id derived from the message that opened it, so a retried decision reuses it. */
export function incidentIdFor(causeId: string): string {
  return `INC-${createHash("sha256").update(causeId).digest("hex").slice(0, 12).toUpperCase()}`;
}

const EMPTY: ServiceRecord = { slos: {}, incident: null, healthySince: null, outbox: [] };
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
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const entry = await deps.records.get(service);
    if (entry !== null && entry.value.outbox.length > 0) {
      await flushOutbox(deps, service, entry);
      continue;
    }
    const decision = decide(toState(entry?.value ?? EMPTY));
    if (!decision.changed) return;
    const next = {
      ...decision.state,
      outbox: decision.events.map((event) => decisionEnvelope(event, cause, evidenceTime)),
    } as ServiceRecord;
    // Lost the race to another replica: re-read and decide again.
    if (await commitRecord(deps, service, entry, next)) return;
  }
  throw new Error(`incident record of ${service} kept changing under ${MAX_ATTEMPTS} attempts`);
}
