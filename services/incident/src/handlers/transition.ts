import { transitionIncident } from "@safedeploy/core";
import type { Incident } from "@safedeploy/core";
import { CommandFailedError, KvConflictError } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { CommandRequest, Envelope, IncidentView } from "@safedeploy/schema";
import type { IncidentIndex, ServiceRecord } from "../store.js";

export interface TransitionDeps {
  readonly records: TypedKv<ServiceRecord>;
  readonly index: TypedKv<IncidentIndex>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  readonly now: () => string;
}

/** The KV key under which an incident's service is found. */
export const indexKey = (incidentId: string) => `id.${incidentId}`;

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
      const { transition } = result;
      const event = createEnvelope(
        {
          type: "incidents.transitioned",
          id: messageId("incidents.transitioned", incident.id, transition.to, transition.at),
          service: incident.service,
          data: {
            incidentId: incident.id,
            from: incident.state,
            to: transition.to,
            at: transition.at,
            actor: transition.actor,
            reason: transition.reason,
            ...(transition.link === undefined ? {} : { link: transition.link }),
          },
        },
        { source: "incident", time: transition.at, correlationId: incident.id },
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
        return toView(result.incident as NonNullable<ServiceRecord["incident"]>);
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw error;
      }
    }
    throw new CommandFailedError(
      "unavailable",
      `incident ${request.incidentId} is changing too fast; try again`,
    );
  };
