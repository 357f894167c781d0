import type { Transition } from "@safedeploy/core";
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
