import type { CommandName } from "./commands.js";
import type { EventType } from "./events.js";
import { qualifiedName, streamOfEventType, streamSubjectFilter } from "./subjects.js";
import type { Namespace } from "./subjects.js";
import { NOTIFIER_CONSUMERS, SAFEDEPLOY_TOPOLOGY } from "./topology.js";
import type { ConsumerDeclaration, Topology } from "./topology.js";

/**
 * NATS users and permissions (DESIGN.md invariant 3): one user per service, allowed only its own
 * subjects. Everything here is derived from {@link SERVICE_ACCESS} and the topology, so the
 * committed server config (`deploy/nats/permissions.conf`) is regenerated, never edited.
 */

/** The NATS users, one per service. */
export const SERVICE_USERS = [
  "collector",
  "budget",
  "incident",
  "policy",
  "proposal",
  "git-actuator",
  "audit",
  "gateway",
  "release-train",
  "notifier",
] as const;
export type ServiceUser = (typeof SERVICE_USERS)[number];

/** What one service does on the bus; its NATS permissions are derived from this alone. */
export interface ServiceAccess {
  /** Event types it publishes, for any service (`<root>.<type>.*`). */
  readonly publishes: readonly EventType[];
  /** Durable consumers of the topology it binds to, pulls from and acks; each has one owner. */
  readonly consumers: readonly string[];
  /** KV buckets of the topology it reads and writes. */
  readonly buckets: readonly string[];
  /** KV buckets of the topology it only reads (get, never put or delete). */
  readonly reads: readonly string[];
  /** Durables of other services whose state (ack floor) it looks up, never pulls from. */
  readonly inspects: readonly string[];
  /** Commands it answers (subscribes, replies through `allow_responses`). */
  readonly serves: readonly CommandName[];
  /** Commands it sends by request/reply. */
  readonly requests: readonly CommandName[];
}

const none = {
  consumers: [],
  buckets: [],
  reads: [],
  inspects: [],
  serves: [],
  requests: [],
} as const;

/** The one event type only the git actuator may receive. */
export const APPROVED_ACTION_EVENT = "governance.action-requested" satisfies EventType;
/** The durable the approved actions are delivered through. */
export const APPROVED_ACTION_CONSUMER = "git-actuator";

/**
 * Who may pull from a durable that delivers approved actions, and why. The git actuator acts on
 * them; audit records every message of every stream (its `audit-governance` durable); proposal
 * publishes them and reads the rest of GOVERNANCE through `proposal-governance`, whose filter must
 * be the whole stream while NATS 2.9 allows one filter per consumer. Nobody else, ever.
 */
export const ACTION_REQUEST_READERS: Readonly<Partial<Record<ServiceUser, string>>> = {
  "git-actuator": "executes approved actions through its own durable",
  audit: "records every message of GOVERNANCE through audit-governance",
  proposal: "publishes the requests; proposal-governance filters the whole stream (NATS 2.9)",
};

/** Whether a durable's deliveries include approved-action requests. */
export function deliversApprovedActions(consumer: ConsumerDeclaration): boolean {
  return (
    consumer.filter === APPROVED_ACTION_EVENT ||
    (consumer.filter === ">" && consumer.stream === streamOfEventType(APPROVED_ACTION_EVENT))
  );
}

/** The declaration: per service, its events, consumers, buckets and commands. */
export const SERVICE_ACCESS: Readonly<Record<ServiceUser, ServiceAccess>> = {
  collector: {
    ...none,
    publishes: ["metrics.poll-requested", "metrics.snapshot"],
    consumers: ["collector-poll"],
  },
  budget: { ...none, publishes: ["budget.evaluated"], consumers: ["budget"] },
  incident: {
    ...none,
    publishes: ["incidents.opened", "incidents.transitioned", "incidents.escalated"],
    consumers: ["incident", "incident-actions", "incident-verdicts"],
    buckets: ["incidents-active"],
    serves: ["incident.transition"],
  },
  policy: {
    ...none,
    publishes: [
      "governance.verdict",
      "governance.canary-step",
      "governance.canary-healthy",
      "governance.freeze-opened",
      "governance.freeze-lifted",
      "governance.freeze-overridden",
      "governance.guard-failed",
      "governance.guard-cleared",
    ],
    consumers: ["policy", "policy-actions"],
    buckets: ["verdicts", "freezes", "canaries", "guards"],
    serves: [
      "gate.query",
      "freeze.create",
      "freeze.lift",
      "freeze.override",
      "canary.step",
      "guard.fail",
      "guard.clear",
    ],
  },
  proposal: {
    ...none,
    publishes: [
      "governance.proposal-created",
      "governance.proposal-approved",
      "governance.proposal-rejected",
      "governance.proposal-superseded",
      "governance.preview-requested",
      APPROVED_ACTION_EVENT,
      "governance.deploy-recorded",
    ],
    consumers: ["proposal", "proposal-governance"],
    buckets: ["proposals", "deploys"],
    serves: [
      "proposal.approve",
      "proposal.reject",
      "proposal.revert",
      "proposal.promotion",
      "deploy.record",
      "deploy.list",
    ],
  },
  "git-actuator": {
    ...none,
    publishes: ["governance.action-completed", "governance.action-failed"],
    consumers: [APPROVED_ACTION_CONSUMER, "git-actuator-previews"],
    // It checks each action against the proposal's own record before acting.
    reads: ["proposals"],
  },
  audit: {
    ...none,
    publishes: [],
    consumers: [
      "audit-metrics",
      "audit-budget",
      "audit-incidents",
      "audit-governance",
      "audit-deadletter",
    ],
    // The head of each stream's chain after each committed batch (`audit verify`).
    buckets: ["audit-anchors"],
  },
  gateway: {
    ...none,
    publishes: [],
    requests: [
      "proposal.approve",
      "proposal.reject",
      "incident.transition",
      "freeze.create",
      "freeze.lift",
      "freeze.override",
      "gate.query",
      "canary.step",
      "guard.clear",
      "deploy.record",
      "deploy.list",
      "train.start",
      "train.status",
      "train.list",
    ],
    // `/v1/audit/verify`: the audit durables' ack floors and the anchored chain heads.
    reads: ["audit-anchors"],
    inspects: [
      "audit-metrics",
      "audit-budget",
      "audit-incidents",
      "audit-governance",
      "audit-deadletter",
    ],
  },
  "release-train": {
    ...none,
    publishes: [
      "governance.train-started",
      "governance.train-step",
      "governance.train-finished",
      "governance.train-manifest",
      "governance.follow-up",
      // Its promotions, once their proposal is approved and the gate passed, and its dry runs'
      // previews. It never receives action requests (it consumes only their outcomes).
      APPROVED_ACTION_EVENT,
      "governance.preview-requested",
    ],
    consumers: [
      "release-train-actions",
      "release-train-failures",
      "release-train-approvals",
      "release-train-rejections",
    ],
    buckets: ["trains"],
    serves: ["train.start", "train.status", "train.list"],
    // `proposal.promotion`: each step's promotion is a proposal; `proposal.revert`: the revert
    // of a failing step; `guard.fail`: a failed guard blocks the service's gate.
    requests: ["gate.query", "proposal.revert", "proposal.promotion", "guard.fail"],
  },
  // Outbound webhooks and Slack: reads the events it reports, records each delivery's outcome.
  notifier: {
    ...none,
    publishes: ["governance.notification-delivered", "governance.notification-failed"],
    consumers: NOTIFIER_CONSUMERS.map((c) => c.durable),
    buckets: ["notifications", "notification-context"],
  },
};

/** The identity that creates and updates the topology (`safedeploy provision`); no service has it. */
export const PROVISIONER_USER = "provisioner";
/** Every NATS user of the generated configuration: the provisioner, then one per service. */
export const NATS_USERS = [PROVISIONER_USER, ...SERVICE_USERS] as const;
export type NatsUser = (typeof NATS_USERS)[number];

export interface PermissionOptions {
  readonly topology?: Topology;
  readonly access?: Readonly<Record<ServiceUser, ServiceAccess>>;
}

/** One user's allow and deny lists, as nats-server reads them. */
export interface UserPermissions {
  readonly user: NatsUser;
  /** Environment variable holding the password; the config references it, never the secret. */
  readonly passwordVariable: string;
  readonly publish: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  /** Whether it may reply to the requests it receives (it serves commands). */
  readonly allowResponses: boolean;
}

/** The environment variable with the password of `user`, e.g. `SAFEDEPLOY_NATS_GIT_ACTUATOR_PASSWORD`. */
export function passwordVariable(user: string): string {
  return `SAFEDEPLOY_NATS_${user.toUpperCase().replace(/-/g, "_")}_PASSWORD`;
}

/**
 * The inbox prefix of a NATS user (`_INBOX_<user>`): its requests' replies, JetStream API replies
 * and pull deliveries arrive under it, and only that user may subscribe there, so no user reads
 * another's replies. `connectBus` takes it from the user it connects as.
 */
export function inboxPrefix(user: string): string {
  return `_INBOX_${user}`;
}

/** Whether a user name can name an inbox: one subject token, no wildcard or separator. */
export function isInboxToken(user: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(user);
}

/** JetStream API calls nobody may make, the provisioner included: history is never cut. */
export const FORBIDDEN_JS_API = [
  "$JS.API.STREAM.DELETE.>",
  "$JS.API.STREAM.PURGE.>",
  "$JS.API.STREAM.MSG.DELETE.>",
  "$JS.API.CONSUMER.DELETE.>",
] as const;

/**
 * JetStream API calls no service user may make: the topology is the provisioner's, so a service
 * can neither create nor change a stream or a durable (another's `max_deliver`, filter, or a
 * recreated durable replaying all history), nor list what it was not given.
 */
export const SERVICE_FORBIDDEN_JS_API = [
  ...FORBIDDEN_JS_API,
  "$JS.API.STREAM.CREATE.>",
  "$JS.API.STREAM.UPDATE.>",
  "$JS.API.CONSUMER.CREATE.>",
  "$JS.API.CONSUMER.DURABLE.CREATE.>",
  "$JS.API.CONSUMER.UPDATE.>",
] as const;

/** The filter subject a durable is created with (as the JetStream adapter creates it). */
export function durableFilter(ns: Namespace, consumer: ConsumerDeclaration): string {
  return consumer.filter === ">"
    ? streamSubjectFilter(ns, consumer.stream)
    : `${ns.root}.${consumer.filter}.>`;
}

/** Creating (or updating) a durable, pinned to its declared filter; NATS 2.9 checks the two agree. */
function createSubject(ns: Namespace, consumer: ConsumerDeclaration): string {
  const stream = qualifiedName(ns, consumer.stream);
  return `$JS.API.CONSUMER.CREATE.${stream}.${qualifiedName(ns, consumer.durable)}.${durableFilter(ns, consumer)}`;
}

function infoSubject(ns: Namespace, consumer: ConsumerDeclaration): string {
  return `$JS.API.CONSUMER.INFO.${qualifiedName(ns, consumer.stream)}.${qualifiedName(ns, consumer.durable)}`;
}

/** Pulling from and acking a durable: what reading its messages takes. */
function readSubjects(ns: Namespace, consumer: ConsumerDeclaration): string[] {
  const stream = qualifiedName(ns, consumer.stream);
  const durable = qualifiedName(ns, consumer.durable);
  return [`$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`, `$JS.ACK.${stream}.${durable}.>`];
}

/** Opening a bucket and getting its keys, without writing. */
function bucketReadSubjects(ns: Namespace, bucket: string): string[] {
  const name = qualifiedName(ns, bucket);
  return [
    `$JS.API.STREAM.INFO.KV_${name}`,
    `$JS.API.DIRECT.GET.KV_${name}`,
    `$JS.API.DIRECT.GET.KV_${name}.>`,
    `$JS.API.STREAM.MSG.GET.KV_${name}`,
  ];
}

function unique(subjects: readonly string[]): string[] {
  return [...new Set(subjects)];
}

function checkDeclaration(
  topology: Topology,
  access: Readonly<Record<ServiceUser, ServiceAccess>>,
): Map<string, ServiceUser[]> {
  const consumers = new Set(topology.consumers.map((c) => c.durable));
  const buckets = new Set(topology.buckets.map((b) => b.name));
  const owners = new Map<string, ServiceUser[]>();
  for (const user of SERVICE_USERS) {
    for (const durable of [...access[user].consumers, ...access[user].inspects]) {
      if (!consumers.has(durable)) throw new Error(`${user} names unknown consumer ${durable}`);
    }
    for (const durable of access[user].consumers) {
      owners.set(durable, [...(owners.get(durable) ?? []), user]);
    }
    for (const bucket of [...access[user].buckets, ...access[user].reads]) {
      if (!buckets.has(bucket)) throw new Error(`${user} uses unknown bucket ${bucket}`);
    }
  }
  for (const consumer of topology.consumers) {
    const owning = owners.get(consumer.durable) ?? [];
    if (owning.length !== 1) {
      throw new Error(
        `consumer ${consumer.durable} must have exactly one owner, has [${owning.join(", ")}]`,
      );
    }
  }
  for (const consumer of topology.consumers.filter(deliversApprovedActions)) {
    const owner = owners.get(consumer.durable)?.[0];
    if (owner === undefined || ACTION_REQUEST_READERS[owner] === undefined) {
      throw new Error(
        `consumer ${consumer.durable} delivers ${APPROVED_ACTION_EVENT} to ${owner}, which is not an approved-action reader`,
      );
    }
  }
  return owners;
}

/**
 * The provisioner: looks up, creates and updates the topology's streams, KV streams and durables
 * (each durable pinned to its declared filter), and reads or writes nothing else: no event, no
 * pull, no KV key. Deleting and purging stay forbidden to it too.
 */
export function provisionerPermissions(
  ns: Namespace,
  topology: Topology = SAFEDEPLOY_TOPOLOGY,
): UserPermissions {
  const streams = [
    ...topology.streams.map((s) => qualifiedName(ns, s.name)),
    ...topology.buckets.map((b) => `KV_${qualifiedName(ns, b.name)}`),
  ];
  return {
    user: PROVISIONER_USER,
    passwordVariable: passwordVariable(PROVISIONER_USER),
    publish: {
      allow: unique([
        "$JS.API.INFO",
        ...streams.flatMap((s) => [
          `$JS.API.STREAM.INFO.${s}`,
          `$JS.API.STREAM.CREATE.${s}`,
          `$JS.API.STREAM.UPDATE.${s}`,
        ]),
        ...topology.consumers.flatMap((c) => [infoSubject(ns, c), createSubject(ns, c)]),
      ]),
      deny: [...FORBIDDEN_JS_API],
    },
    subscribe: { allow: [`${inboxPrefix(PROVISIONER_USER)}.>`], deny: [] },
    allowResponses: false,
  };
}

/**
 * Every NATS user's permissions in namespace `ns`: the provisioner's
 * ({@link provisionerPermissions}) first, then one per service. A service user binds to (looks up), pulls from and acks
 * its own durables, reads and writes its buckets, reads its read-only buckets, and creates or
 * updates nothing. Throws when the declaration names a consumer or bucket the topology lacks, a
 * topology consumer has no owner or two, or approved actions reach a user that may not read them.
 */
export function servicePermissions(
  ns: Namespace,
  options: PermissionOptions = {},
): UserPermissions[] {
  return [provisionerPermissions(ns, options.topology), ...serviceUserPermissions(ns, options)];
}

function serviceUserPermissions(ns: Namespace, options: PermissionOptions): UserPermissions[] {
  const topology = options.topology ?? SAFEDEPLOY_TOPOLOGY;
  const access = options.access ?? SERVICE_ACCESS;
  checkDeclaration(topology, access);
  const byName = new Map(topology.consumers.map((c) => [c.durable, c]));
  const actionConsumer = byName.get(APPROVED_ACTION_CONSUMER);
  const actionSubjects = `${ns.root}.${APPROVED_ACTION_EVENT}.>`;

  return SERVICE_USERS.map((user): UserPermissions => {
    const declared = access[user];
    const own = topology.consumers.filter((c) => declared.consumers.includes(c.durable));
    const inspected = topology.consumers.filter((c) => declared.inspects.includes(c.durable));
    const publishAllow = unique([
      ...declared.publishes.map((type) => `${ns.root}.${type}.*`),
      `${ns.root}.dlq.>`,
      ...declared.requests.map((command) => `${ns.root}.cmd.${command}`),
      "$JS.API.INFO",
      ...[...own, ...inspected].map((c) => infoSubject(ns, c)),
      ...own.flatMap((c) => readSubjects(ns, c)),
      ...declared.buckets.flatMap((b) => [
        `$KV.${qualifiedName(ns, b)}.>`,
        ...bucketReadSubjects(ns, b),
      ]),
      ...declared.reads.flatMap((b) => bucketReadSubjects(ns, b)),
    ]);
    const isActuator = declared.consumers.includes(APPROVED_ACTION_CONSUMER);
    const actionDenied =
      isActuator || actionConsumer === undefined ? [] : readSubjects(ns, actionConsumer);
    return {
      user,
      passwordVariable: passwordVariable(user),
      publish: {
        allow: publishAllow,
        deny: unique([...SERVICE_FORBIDDEN_JS_API, ...actionDenied]),
      },
      subscribe: {
        allow: unique([
          `${inboxPrefix(user)}.>`,
          ...declared.serves.map((command) => `${ns.root}.cmd.${command}`),
        ]),
        deny: isActuator ? [] : [actionSubjects],
      },
      allowResponses: declared.serves.length > 0,
    };
  });
}

const quote = (text: string): string => JSON.stringify(text);

function list(subjects: readonly string[], indent: string): string {
  if (subjects.length === 0) return "[]";
  return `[\n${subjects.map((s) => `${indent}  ${quote(s)}`).join("\n")}\n${indent}]`;
}

/**
 * The nats-server (2.9+) configuration: an `authorization` block with the provisioner and one
 * user per service.
 * Passwords are `$SAFEDEPLOY_NATS_<SERVICE>_PASSWORD` references, read from the server's
 * environment, so the file holds no secret and the server refuses to start without them.
 */
export function natsPermissionsConfig(ns: Namespace, options: PermissionOptions = {}): string {
  const users = servicePermissions(ns, options).map((p) => {
    const i = "      ";
    return [
      `    {`,
      `      user: ${quote(p.user)}`,
      `      password: $${p.passwordVariable}`,
      `      permissions: {`,
      `        publish: {`,
      `          allow: ${list(p.publish.allow, `${i}    `)}`,
      `          deny: ${list(p.publish.deny, `${i}    `)}`,
      `        }`,
      `        subscribe: {`,
      `          allow: ${list(p.subscribe.allow, `${i}    `)}`,
      `          deny: ${list(p.subscribe.deny, `${i}    `)}`,
      `        }`,
      ...(p.allowResponses ? [`        allow_responses: true`] : []),
      `      }`,
      `    }`,
    ].join("\n");
  });
  return [
    `# Generated by \`safedeploy generate nats-permissions\` from packages/schema/src/permissions.ts`,
    `# for subject root "${ns.root}" and stream prefix "${ns.prefix}". Do not edit: regenerate.`,
    `authorization {`,
    `  users = [`,
    users.join("\n"),
    `  ]`,
    `}`,
    ``,
  ].join("\n");
}
