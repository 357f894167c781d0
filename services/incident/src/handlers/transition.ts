import { transitionIncident } from "@safedeploy/core";
import type { TransitionResult } from "@safedeploy/core";
import { CommandFailedError, KvConflictError } from "@safedeploy/jetstream";
import type { CommandRequest, IncidentView } from "@safedeploy/schema";
import { indexKey, transitionCurrent } from "../record.js";
import type { RecordDeps } from "../record.js";
import type { ServiceRecord } from "../store.js";

export interface TransitionDeps extends RecordDeps {
  readonly now: () => string;
}

export function toView(incident: NonNullable<ServiceRecord["incident"]>): IncidentView {
  return {
    id: incident.id,
    service: incident.service,
    state: incident.state,
    severity: incident.severity,
    class: incident.class,
    openedAt: incident.openedAt,
    updatedAt: incident.updatedAt,
    transitions: incident.transitions,
  };
}

/**
 * A person moves an incident (investigating, resolved, postmortem-complete with a link). Illegal
 * transitions are refused as `conflict` with the state machine's reason.
 */
export const onTransitionCommand =
  (deps: TransitionDeps) =>
  async (request: CommandRequest<"incident.transition">): Promise<IncidentView> => {
    const located = await deps.index.get(indexKey(request.incidentId));
    if (located === null)
      throw new CommandFailedError("not_found", `no incident ${request.incidentId}`);
    const at = deps.now();
    const outcome = await transitionCurrent<TransitionResult>(
      deps,
      located.value.service,
      request.incidentId,
      (incident) => {
        const transition = transitionIncident(incident, {
          to: request.to,
          initiator: "human",
          actor: request.actor,
          reason: request.reason,
          at,
          ...(request.link === undefined ? {} : { link: request.link }),
        });
        return {
          transition,
          context: { source: "incident", time: at, correlationId: incident.id },
          result: () => transition,
        };
      },
    ).catch((error: unknown) => {
      if (error instanceof KvConflictError) {
        throw new CommandFailedError(
          "unavailable",
          `incident ${request.incidentId} is changing too fast; try again`,
        );
      }
      throw error;
    });
    if (outcome === "missing") {
      throw new CommandFailedError(
        "not_found",
        `incident ${request.incidentId} is no longer current for its service`,
      );
    }
    if (!outcome.ok) throw new CommandFailedError("conflict", outcome.refusal.message);
    return toView(outcome.incident as NonNullable<ServiceRecord["incident"]>);
  };
