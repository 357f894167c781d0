import { transitionIncident } from "@safedeploy/core";
import type { Incident } from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { IncidentIndex, ServiceRecord } from "../store.js";
import { indexKey } from "./transition.js";

export interface ActionDeps {
  readonly records: TypedKv<ServiceRecord>;
  readonly index: TypedKv<IncidentIndex>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
}

/**
 * An executed rollback mitigates its incident. Dry runs, other kinds, unknown or already-moved
 * incidents change nothing, so redelivery is harmless.
 */
export const onActionCompleted =
  (deps: ActionDeps) =>
  async (completed: Envelope<"governance.action-completed">): Promise<void> => {
    const { incidentId, kind, dryRun, at } = completed.data;
    if (incidentId === null || dryRun || kind !== "rollback-rollout") return;
    const located = await deps.index.get(indexKey(incidentId));
    if (located === null) return;
    for (let attempt = 1; attempt <= 20; attempt += 1) {
      const entry = await deps.records.get(located.value.service);
      const incident = entry?.value.incident ?? null;
      if (entry === null || incident?.id !== incidentId) return;
      const result = transitionIncident(incident as Incident, {
        to: "mitigated",
        initiator: "system",
        actor: "system",
        reason: `rollback ${completed.data.proposalId} executed (${completed.data.commit.slice(0, 12)})`,
        at,
      });
      if (!result.ok) return; // already mitigated, resolved, or closed
      const event = createEnvelope(
        {
          type: "incidents.transitioned",
          id: messageId("incidents.transitioned", incidentId, "mitigated", at),
          service: incident.service,
          data: {
            incidentId,
            from: incident.state,
            to: "mitigated",
            at,
            actor: "system",
            reason: result.transition.reason,
          },
        },
        { source: "incident", time: at, causedBy: completed },
      );
      const next = {
        ...entry.value,
        incident: result.incident,
        outbox: [...entry.value.outbox, event],
      } as ServiceRecord;
      try {
        const revision = await deps.records.update(incident.service, next, entry.revision);
        for (const envelope of next.outbox) await deps.publish(envelope);
        await deps.records
          .update(incident.service, { ...next, outbox: [] }, revision)
          .catch((error: unknown) => {
            if (!(error instanceof KvConflictError)) throw error;
          });
        return;
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw error;
      }
    }
    throw new Error(`incident ${incidentId} kept changing; will retry`);
  };
