import { transitionIncident } from "@safedeploy/core";
import type { Incident } from "@safedeploy/core";
import type { Envelope } from "@safedeploy/schema";
import { commitRecord, indexKey, transitionedEvent } from "../record.js";
import type { RecordDeps } from "../record.js";
import type { ServiceRecord } from "../store.js";

export type ActionDeps = RecordDeps;

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
      const event = transitionedEvent(incident, result.transition, {
        source: "incident",
        time: at,
        causedBy: completed,
      });
      const next = {
        ...entry.value,
        incident: result.incident,
        outbox: [...entry.value.outbox, event],
      };
      if (await commitRecord(deps, incident.service, entry, next as ServiceRecord)) return;
    }
    throw new Error(`incident ${incidentId} kept changing; will retry`);
  };
