import type { Envelope, NotificationKind, NotifierDocument } from "@safedeploy/schema";

/** What a notifier's message shows about the incident behind an event, when it is known. */
export interface IncidentFacts {
  readonly incidentId: string;
  readonly slo: string | null;
  /** The burn (or `exhausted`) that opened it. */
  readonly severity: string;
  readonly class: string;
  readonly reason: string;
  /** Fraction of the error budget left when it opened, when known. */
  readonly budgetRemaining: number | null;
}

/** A proposal as the notifier remembers it from `governance.proposal-created`. */
export interface ProposalFacts {
  /** The id of its `governance.proposal-created` event: the event its notification is about. */
  readonly eventId: string;
  readonly proposalId: string;
  readonly service: string;
  readonly kind: string;
  readonly incidentId: string | null;
  readonly summary: string;
  readonly createdAt: string;
}

/** One thing to tell the notifiers: an outward event kind and what it is about. */
export interface Notification {
  readonly kind: NotificationKind;
  /** The stream event it was derived from: the key of its delivery id. */
  readonly eventId: string;
  readonly service: string;
  readonly at: string;
  /** One line, for people. */
  readonly title: string;
  readonly incidentId: string | null;
  readonly proposalId: string | null;
  readonly incident: IncidentFacts | null;
  /** For `proposal.created`: what approving would push, when its preview computed it. */
  readonly diff: string | null;
  /** Whether the message may carry Approve / Reject (a pending proposal's announcement). */
  readonly decidable: boolean;
  /** The source event's payload, as it was recorded. */
  readonly data: Readonly<Record<string, unknown>>;
}

/** What the notifier knows besides the event: looked up by the service, passed in. */
export interface NotificationContext {
  readonly incident: IncidentFacts | null;
  readonly proposal: ProposalFacts | null;
}

/** Kinds of proposal announced only once their preview (the diff) is known. */
export function awaitsPreview(kind: string): boolean {
  // A release train's promotion is previewed by the train's own dry run, not per proposal.
  return kind !== "promote-release";
}

function base(
  envelope: Envelope,
  kind: NotificationKind,
  title: string,
  context: NotificationContext,
  ids: { incidentId?: string | null; proposalId?: string | null },
): Notification {
  return {
    kind,
    eventId: envelope.id,
    service: envelope.service,
    at: envelope.time,
    title,
    incidentId: ids.incidentId ?? null,
    proposalId: ids.proposalId ?? null,
    incident: context.incident,
    diff: null,
    decidable: false,
    data: envelope.data,
  };
}

/** The announcement of a proposal: at creation, or once its preview says what it would push. */
export function proposalAnnouncement(
  envelope: Envelope,
  proposal: ProposalFacts,
  context: NotificationContext,
  diff: string | null,
): Notification {
  return {
    ...base(
      envelope,
      "proposal.created",
      `Proposal ${proposal.proposalId} (${proposal.kind}) for ${proposal.service}: ${proposal.summary}`,
      context,
      {
        incidentId: proposal.incidentId,
        proposalId: proposal.proposalId,
      },
    ),
    eventId: proposal.eventId,
    service: proposal.service,
    at: proposal.createdAt,
    diff,
    decidable: true,
  };
}

function incidentNotifications(envelope: Envelope, context: NotificationContext): Notification[] {
  const s = envelope.service;
  switch (envelope.type) {
    case "incidents.opened": {
      const d = envelope.data;
      const title = `Incident ${d.incidentId} opened for ${s} (${d.class}, ${d.severity}): ${d.reason}`;
      return [base(envelope, "incident.opened", title, context, { incidentId: d.incidentId })];
    }
    case "incidents.escalated": {
      const d = envelope.data;
      const title = `Incident ${d.incidentId} of ${s} escalated ${d.previousClass} → ${d.class} (${d.severity})`;
      return [base(envelope, "incident.escalated", title, context, { incidentId: d.incidentId })];
    }
    case "incidents.transitioned": {
      const d = envelope.data;
      if (d.to !== "resolved") return [];
      const title = `Incident ${d.incidentId} of ${s} resolved by ${d.actor}: ${d.reason}`;
      return [base(envelope, "incident.resolved", title, context, { incidentId: d.incidentId })];
    }
    default:
      return [];
  }
}

function proposalNotifications(envelope: Envelope, context: NotificationContext): Notification[] {
  const s = envelope.service;
  const proposal = context.proposal;
  switch (envelope.type) {
    case "governance.proposal-created":
      return proposal !== null && !awaitsPreview(envelope.data.kind)
        ? [proposalAnnouncement(envelope, proposal, context, null)]
        : [];
    case "governance.proposal-approved": {
      const d = envelope.data;
      if (!d.approved) return [];
      const title = `Proposal ${d.proposalId} for ${s} approved (${d.approvals}/${d.required}, last by ${d.by})`;
      return [base(envelope, "proposal.approved", title, context, { proposalId: d.proposalId })];
    }
    case "governance.action-completed": {
      const d = envelope.data;
      if (d.dryRun)
        return proposal === null ? [] : [proposalAnnouncement(envelope, proposal, context, d.diff)];
      const where = d.prUrl ?? `branch ${d.branch}`;
      const title = `Proposal ${d.proposalId} for ${s} executed: commit ${d.commit.slice(0, 12)}, ${where}`;
      return [
        base(envelope, "proposal.executed", title, context, {
          incidentId: d.incidentId,
          proposalId: d.proposalId,
        }),
      ];
    }
    case "governance.action-failed": {
      const d = envelope.data;
      const found: Notification[] = [];
      // A failed preview still announces the proposal, without a diff; a person decides.
      if (d.dryRun === true && proposal !== null) {
        found.push(proposalAnnouncement(envelope, proposal, context, null));
      }
      if (d.needsTriage) {
        const title = `Proposal ${d.proposalId} for ${s} needs triage: ${d.reason}`;
        found.push(
          base(envelope, "proposal.needs-triage", title, context, { proposalId: d.proposalId }),
        );
      }
      return found;
    }
    default:
      return [];
  }
}

function otherNotifications(envelope: Envelope, context: NotificationContext): Notification[] {
  const s = envelope.service;
  switch (envelope.type) {
    case "governance.freeze-opened": {
      const d = envelope.data;
      const title = `Freeze on ${s} until ${d.until} (${d.origin}, by ${d.actor}): ${d.reason}`;
      return [base(envelope, "freeze.opened", title, context, {})];
    }
    case "governance.freeze-lifted": {
      const d = envelope.data;
      return [
        base(
          envelope,
          "freeze.lifted",
          `Freeze on ${s} lifted by ${d.actor}: ${d.reason}`,
          context,
          {},
        ),
      ];
    }
    case "governance.train-finished": {
      const d = envelope.data;
      const kind = d.outcome === "completed" ? "train.completed" : "train.halted";
      const title = `Release train ${d.trainId} ${d.outcome}: ${d.reason}`;
      return [base(envelope, kind, title, context, {})];
    }
    default:
      return [];
  }
}

/**
 * What an event means to the notifiers: none, one or (a failed preview that also needs triage)
 * two notifications. Pure: what the notifier remembers about the incident and the proposal comes
 * in `context`.
 */
export function notificationsOf(envelope: Envelope, context: NotificationContext): Notification[] {
  return [
    ...incidentNotifications(envelope, context),
    ...proposalNotifications(envelope, context),
    ...otherNotifications(envelope, context),
  ];
}

/** A notifier as the service holds it: its catalog name and spec. */
export interface NotifierTarget {
  readonly name: string;
  readonly spec: NotifierDocument["spec"];
}

/** The notifiers that want `notification`: by service (none named: every one) and event kind. */
export function notifiersFor<N extends NotifierTarget>(
  notifiers: readonly N[],
  notification: Pick<Notification, "kind" | "service">,
): N[] {
  return notifiers.filter(
    (n) =>
      (n.spec.services === undefined || n.spec.services.includes(notification.service)) &&
      (n.spec.events === undefined || n.spec.events.includes(notification.kind)),
  );
}
