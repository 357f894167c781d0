import type { MessageContext } from "@safedeploy/jetstream";
import {
  deliveryId,
  isSettled,
  notificationsOf,
  notifiersFor,
  recordAttempt,
} from "@safedeploy/notify";
import type {
  DeliveryRecord,
  IncidentFacts,
  Notification,
  NotificationContext,
  ProposalFacts,
} from "@safedeploy/notify";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, NotificationKind } from "@safedeploy/schema";
import { WAIT_FOR_PROPOSAL_DELIVERIES } from "../deps.js";
import type { NotifierDeps, Sender } from "../deps.js";
import { contextKey } from "../store.js";
import { budgetKey } from "./budget.js";

/** Some notifier has not settled a delivery: the event comes back after the retry delay. */
export class DeliveryPendingError extends Error {
  override readonly name = "DeliveryPendingError";
  readonly retryable = true;
}

function proposalIdOf(envelope: Envelope): string | null {
  const data = envelope.data as { proposalId?: unknown };
  return typeof data.proposalId === "string" ? data.proposalId : null;
}

function incidentIdOf(envelope: Envelope, proposal: ProposalFacts | null): string | null {
  const data = envelope.data as { incidentId?: unknown };
  if (typeof data.incidentId === "string") return data.incidentId;
  return proposal?.incidentId ?? null;
}

/** Stores what later messages show: an opened incident's facts, a created proposal's. */
async function remember(deps: NotifierDeps, envelope: Envelope): Promise<void> {
  if (envelope.type === "incidents.opened") {
    const d = envelope.data;
    const incident: IncidentFacts = {
      incidentId: d.incidentId,
      slo: d.slo,
      severity: d.severity,
      class: d.class,
      reason: d.reason,
      budgetRemaining: null,
    };
    await deps.context.mutate(contextKey("incident", d.incidentId), (current) =>
      current === null ? { incident } : undefined,
    );
  }
  if (envelope.type === "governance.proposal-created") {
    const d = envelope.data;
    const proposal: ProposalFacts = {
      eventId: envelope.id,
      proposalId: d.proposalId,
      service: envelope.service,
      kind: d.kind,
      incidentId: d.incidentId,
      summary: d.summary,
      createdAt: d.createdAt,
    };
    await deps.context.mutate(contextKey("proposal", d.proposalId), (current) =>
      current === null ? { proposal } : undefined,
    );
  }
}

async function contextOf(deps: NotifierDeps, envelope: Envelope): Promise<NotificationContext> {
  const proposalId = proposalIdOf(envelope);
  const proposal =
    proposalId === null
      ? null
      : ((await deps.context.get(contextKey("proposal", proposalId)))?.value.proposal ?? null);
  const incidentId = incidentIdOf(envelope, proposal);
  const incident =
    incidentId === null
      ? null
      : ((await deps.context.get(contextKey("incident", incidentId)))?.value.incident ?? null);
  if (incident?.slo === null || incident?.slo === undefined) return { proposal, incident };
  const budget = (await deps.context.get(budgetKey(envelope.service, incident.slo)))?.value.budget;
  return {
    proposal,
    incident: { ...incident, budgetRemaining: budget?.budgetRemaining ?? incident.budgetRemaining },
  };
}

/** The audit event of a delivery record's last attempt. */
function outcomeEvent(id: string, record: DeliveryRecord, service: string): Envelope {
  const common = {
    notifier: record.notifier,
    deliveryId: id,
    eventId: record.eventId,
    event: record.event as NotificationKind,
    at: record.updatedAt,
  };
  const context = { source: "notifier", time: record.updatedAt, correlationId: record.eventId };
  if (record.state === "delivered") {
    return createEnvelope(
      {
        type: "governance.notification-delivered",
        id: messageId("governance.notification-delivered", id),
        service,
        data: { ...common, attempts: record.attempts, status: record.lastStatus ?? 200 },
      },
      context,
    );
  }
  return createEnvelope(
    {
      type: "governance.notification-failed",
      id: messageId("governance.notification-failed", id, record.attempts),
      service,
      data: {
        ...common,
        attempt: record.attempts,
        status: record.lastStatus,
        error: (record.lastError ?? "failed").slice(0, 1_000),
        final: record.state === "failed",
      },
    },
    context,
  );
}

/** Publishes the last attempt's outcome once, then marks it reported. */
async function report(
  deps: NotifierDeps,
  id: string,
  record: DeliveryRecord,
  revision: number,
  service: string,
): Promise<void> {
  await deps.publish(outcomeEvent(id, record, service));
  await deps.deliveries.update(id, { ...record, reported: true }, revision);
}

/**
 * One notification to one notifier: nothing when its delivery is settled (delivered or given
 * up), else one attempt, recorded under the delivery id before its outcome is published. True
 * when it is still pending another attempt.
 */
async function deliver(deps: NotifierDeps, sender: Sender, n: Notification): Promise<boolean> {
  const id = deliveryId(sender.name, n.eventId);
  let current = await deps.deliveries.get(id);
  if (current !== null && !current.value.reported) {
    await report(deps, id, current.value, current.revision, n.service);
    current = await deps.deliveries.get(id);
  }
  if (current !== null && isSettled(current.value)) return false;
  const outcome = await sender.send(n, id);
  const identity = { notifier: sender.name, eventId: n.eventId, event: n.kind };
  const record = recordAttempt(
    current?.value ?? null,
    identity,
    outcome,
    sender.spec.maxAttempts,
    deps.now(),
  );
  const revision =
    current === null
      ? await deps.deliveries.create(id, record)
      : await deps.deliveries.update(id, record, current.revision);
  deps.onAttempt(sender.name, record);
  await report(deps, id, record, revision, n.service);
  return record.state === "pending";
}

/**
 * Any event the notifier consumes: remember its facts, derive its notifications, deliver each to
 * every notifier that wants it (in parallel), and come back later while one is still pending.
 */
export const onEvent =
  (deps: NotifierDeps) =>
  async (envelope: Envelope, message: MessageContext): Promise<void> => {
    await remember(deps, envelope);
    const context = await contextOf(deps, envelope);
    const preview =
      (envelope.type === "governance.action-completed" && envelope.data.dryRun) ||
      (envelope.type === "governance.action-failed" && envelope.data.dryRun === true);
    if (preview && context.proposal === null) {
      // The preview may overtake its proposal's creation on another durable: wait a little.
      if (message.deliveryCount < WAIT_FOR_PROPOSAL_DELIVERIES) {
        throw new DeliveryPendingError(`proposal of ${envelope.id} not known yet`);
      }
      return;
    }
    const jobs = notificationsOf(envelope, context).flatMap((n) =>
      notifiersFor(deps.senders, n).map((sender) => deliver(deps, sender, n)),
    );
    const pending = (await Promise.all(jobs)).filter(Boolean).length;
    if (pending > 0) {
      throw new DeliveryPendingError(`${pending} deliveries of ${envelope.id} to retry`);
    }
  };
