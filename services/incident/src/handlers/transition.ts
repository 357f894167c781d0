import { transitionIncident } from "@safedeploy/core";
import type { Incident } from "@safedeploy/core";
import { CommandFailedError } from "@safedeploy/jetstream";
import type { CommandRequest, IncidentView } from "@safedeploy/schema";
import { commitRecord, indexKey, transitionedEvent } from "../record.js";
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
    for (let attempt = 1; attempt <= 20; attempt += 1) {
      const entry = await deps.records.get(located.value.service);
      const incident = entry?.value.incident ?? null;
      if (entry === null || incident?.id !== request.incidentId) {
        throw new CommandFailedError(
          "not_found",
          `incident ${request.incidentId} is no longer current for its service`,
        );
      }
      const result = transitionIncident(incident as Incident, {
        to: request.to,
        initiator: "human",
        actor: request.actor,
        reason: request.reason,
        at: deps.now(),
        ...(request.link === undefined ? {} : { link: request.link }),
      });
      if (!result.ok) throw new CommandFailedError("conflict", result.refusal.message);
      const event = transitionedEvent(incident, result.transition, {
        source: "incident",
        time: result.transition.at,
        correlationId: incident.id,
      });
      const next = {
        ...entry.value,
        incident: result.incident,
        outbox: [...entry.value.outbox, event],
      };
      if (await commitRecord(deps, incident.service, entry, next as ServiceRecord)) {
        return toView(result.incident as NonNullable<ServiceRecord["incident"]>);
      }
    }
    throw new CommandFailedError(
      "unavailable",
      `incident ${request.incidentId} is changing too fast; try again`,
    );
  };
