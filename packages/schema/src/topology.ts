import type { StreamName } from "./subjects.js";

/** A stream as declared; the adapter adds limits retention, deny-delete and deny-purge. */
export interface StreamDeclaration {
  readonly name: StreamName;
  /** How long messages are kept (Prometheus duration); `null` keeps them forever. */
  readonly maxAge: string | null;
  /** Window in which a repeated `Nats-Msg-Id` is dropped. */
  readonly duplicateWindow: string;
}

/** A durable pull consumer shared by every replica of the service that owns it. */
export interface ConsumerDeclaration {
  readonly stream: StreamName;
  readonly durable: string;
  /** Event type (e.g. `budget.evaluated`) or `>` for the whole stream; one filter, for NATS 2.9. */
  readonly filter: string;
  readonly ackWait: string;
  /** Deliveries before a failing message is dead-lettered. */
  readonly maxDeliver: number;
  readonly maxAckPending: number;
}

export interface BucketDeclaration {
  readonly name: string;
  readonly history: number;
  readonly description: string;
}

export interface Topology {
  readonly streams: readonly StreamDeclaration[];
  readonly consumers: readonly ConsumerDeclaration[];
  readonly buckets: readonly BucketDeclaration[];
}

const consumer = (
  stream: StreamName,
  durable: string,
  filter: string,
  overrides: Partial<ConsumerDeclaration> = {},
): ConsumerDeclaration => ({
  stream,
  durable,
  filter,
  ackWait: "30s",
  maxDeliver: 5,
  maxAckPending: 1000,
  ...overrides,
});

/**
 * The KV bucket holding, per stream, the head of its audit chain as the audit service committed it
 * (a `ChainHead`): outside PostgreSQL, so rewriting a stream's rows with recomputed hashes no
 * longer matches.
 */
export const AUDIT_ANCHOR_BUCKET = {
  name: "audit-anchors",
  history: 5,
  description: "head (position, hash) of each stream's audit chain after each committed batch",
} as const satisfies BucketDeclaration;

const notifierConsumer = (stream: StreamName, durable: string, filter: string) =>
  consumer(stream, durable, filter, { ackWait: "2m", maxDeliver: 50, maxAckPending: 100 });

/** The notifier's durables: what it reports, one event type each (incidents: the whole stream). */
export const NOTIFIER_CONSUMERS: readonly ConsumerDeclaration[] = [
  notifierConsumer("INCIDENTS", "notifier-incidents", ">"),
  // The budget a burning service has left, for the messages' Budget field (a burning one only).
  consumer("BUDGET", "notifier-budget", "budget.evaluated", { maxDeliver: 5 }),
  notifierConsumer("GOVERNANCE", "notifier-proposals", "governance.proposal-created"),
  notifierConsumer("GOVERNANCE", "notifier-approvals", "governance.proposal-approved"),
  notifierConsumer("GOVERNANCE", "notifier-actions", "governance.action-completed"),
  notifierConsumer("GOVERNANCE", "notifier-action-failures", "governance.action-failed"),
  notifierConsumer("GOVERNANCE", "notifier-freezes-opened", "governance.freeze-opened"),
  notifierConsumer("GOVERNANCE", "notifier-freezes-lifted", "governance.freeze-lifted"),
  notifierConsumer("GOVERNANCE", "notifier-trains", "governance.train-finished"),
];

/** Everything SafeDeploy needs on the NATS server; provisioning it twice changes nothing. */
export const SAFEDEPLOY_TOPOLOGY: Topology = {
  streams: [
    { name: "METRICS", maxAge: "7d", duplicateWindow: "10m" },
    { name: "BUDGET", maxAge: "35d", duplicateWindow: "10m" },
    { name: "INCIDENTS", maxAge: null, duplicateWindow: "10m" },
    { name: "GOVERNANCE", maxAge: null, duplicateWindow: "10m" },
    { name: "DEADLETTER", maxAge: "90d", duplicateWindow: "10m" },
  ],
  consumers: [
    consumer("METRICS", "collector-poll", "metrics.poll-requested", { ackWait: "2m" }),
    consumer("METRICS", "budget", "metrics.snapshot"),
    consumer("BUDGET", "incident", "budget.evaluated"),
    consumer("BUDGET", "policy", "budget.evaluated"),
    consumer("INCIDENTS", "proposal", ">"),
    consumer("GOVERNANCE", "incident-actions", "governance.action-completed"),
    consumer("GOVERNANCE", "incident-verdicts", "governance.verdict"),
    consumer("GOVERNANCE", "proposal-governance", ">"),
    consumer("GOVERNANCE", "git-actuator", "governance.action-requested", { ackWait: "2m" }),
    consumer("GOVERNANCE", "git-actuator-previews", "governance.preview-requested", {
      ackWait: "2m",
    }),
    consumer("GOVERNANCE", "release-train-actions", "governance.action-completed"),
    consumer("GOVERNANCE", "release-train-failures", "governance.action-failed"),
    // A promotion waiting for its approvals goes on once they are in (or halts, rejected).
    consumer("GOVERNANCE", "release-train-approvals", "governance.proposal-approved"),
    consumer("GOVERNANCE", "release-train-rejections", "governance.proposal-rejected"),
    // An executed revert clears the failed release guard of its service.
    consumer("GOVERNANCE", "policy-actions", "governance.action-completed"),
    // The notifier: one durable per event it reports (NATS 2.9 takes one filter per consumer, and
    // a whole-GOVERNANCE filter would deliver approved actions to it). It gives up by its own
    // count of attempts, well before maxDeliver.
    ...NOTIFIER_CONSUMERS,
    consumer("METRICS", "audit-metrics", ">", { maxAckPending: 10_000 }),
    consumer("BUDGET", "audit-budget", ">", { maxAckPending: 10_000 }),
    consumer("INCIDENTS", "audit-incidents", ">", { maxAckPending: 10_000 }),
    consumer("GOVERNANCE", "audit-governance", ">", { maxAckPending: 10_000 }),
    consumer("DEADLETTER", "audit-deadletter", ">", { maxAckPending: 10_000 }),
  ],
  buckets: [
    { name: "incidents-active", history: 5, description: "active incident per service" },
    { name: "freezes", history: 5, description: "freeze windows per service" },
    { name: "proposals", history: 5, description: "proposal index by cause" },
    { name: "verdicts", history: 1, description: "last published verdict per service" },
    { name: "canaries", history: 5, description: "canary step per service" },
    {
      name: "deploys",
      history: 1,
      description: "deploy events seen (dedup beyond the stream window) and per-service history",
    },
    { name: "guards", history: 5, description: "failed release-train guards per service" },
    { name: "trains", history: 5, description: "release train state and manifest per train" },
    { name: "notifications", history: 5, description: "delivery state per notification" },
    {
      name: "notification-context",
      history: 1,
      description: "incident and proposal facts the notifier's messages show",
    },
    // Provisioned up front, so the audit user never needs the right to create a stream.
    AUDIT_ANCHOR_BUCKET,
  ],
};

/**
 * The audit service's durables: one per stream, every subject. What they acknowledged was
 * committed to the audit log, so their ack floors anchor its tail (`audit verify`).
 */
export const AUDIT_CONSUMERS: readonly ConsumerDeclaration[] = SAFEDEPLOY_TOPOLOGY.consumers.filter(
  (consumer) => consumer.durable.startsWith("audit-"),
);
