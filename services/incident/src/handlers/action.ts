import { transitionIncident } from "@safedeploy/core";
import type { Envelope } from "@safedeploy/schema";
import { indexKey, transitionCurrent } from "../record.js";
import type { RecordDeps } from "../record.js";

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
    await transitionCurrent(deps, located.value.service, incidentId, (incident) => ({
      // Already mitigated, resolved or closed: the transition is refused and nothing changes.
      transition: transitionIncident(incident, {
        to: "mitigated",
        initiator: "system",
        actor: "system",
        reason: `rollback ${completed.data.proposalId} executed (${completed.data.commit.slice(0, 12)})`,
        at,
      }),
      context: { source: "incident", time: at, causedBy: completed },
      result: () => undefined,
    }));
  };
