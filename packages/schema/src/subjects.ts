/**
 * Stream, subject and bucket names. Every subject is `<root>.<domain>.<name>.<service>`: the last
 * token is always the service, so consumers and replays can filter by service.
 */

/** The JetStream streams of DESIGN.md, each the replay log of one domain. */
export const STREAMS = ["METRICS", "BUDGET", "INCIDENTS", "GOVERNANCE", "DEADLETTER"] as const;
export type StreamName = (typeof STREAMS)[number];

/** The subject domain (second token) each stream captures. */
export const STREAM_DOMAINS = {
  METRICS: "metrics",
  BUDGET: "budget",
  INCIDENTS: "incidents",
  GOVERNANCE: "governance",
  DEADLETTER: "dlq",
} as const satisfies Record<StreamName, string>;
export type Domain = (typeof STREAM_DOMAINS)[StreamName];

/**
 * Where a deployment's names live. Production uses `{ root: "sd", prefix: "" }`; tests give each
 * file its own namespace so files run in parallel on one server without seeing each other.
 */
export interface Namespace {
  /** First subject token for every event, command and dead letter. */
  readonly root: string;
  /** Prefix for stream names, KV buckets and durable consumer names. */
  readonly prefix: string;
}

export const DEFAULT_NAMESPACE: Namespace = { root: "sd", prefix: "" };

/** The namespaced name of a stream, KV bucket or durable consumer. */
export function qualifiedName(ns: Namespace, name: string): string {
  return `${ns.prefix}${name}`;
}

/** The subject filter a stream captures, e.g. `sd.metrics.>`. */
export function streamSubjectFilter(ns: Namespace, stream: StreamName): string {
  return `${ns.root}.${STREAM_DOMAINS[stream]}.>`;
}

/** The stream that stores an event type, from its domain (the part before the first dot). */
export function streamOfEventType(type: string): StreamName | undefined {
  const domain = type.slice(0, type.indexOf("."));
  return STREAMS.find((stream) => STREAM_DOMAINS[stream] === domain);
}

/** The subject an event of `type` about `service` is published on. */
export function eventSubject(ns: Namespace, type: string, service: string): string {
  return `${ns.root}.${type}.${service}`;
}

/** A filter matching every event of `type`, for any service (or one service). */
export function eventSubjectFilter(ns: Namespace, type: string, service = "*"): string {
  return `${ns.root}.${type}.${service}`;
}

/** The request/reply subject of a command, e.g. `sd.cmd.proposal.approve`. */
export function commandSubject(ns: Namespace, command: string): string {
  return `${ns.root}.cmd.${command}`;
}

/** The dead-letter subject for a message that came from `stream` about `service`. */
export function deadLetterSubject(ns: Namespace, stream: StreamName, service: string): string {
  return `${ns.root}.dlq.${STREAM_DOMAINS[stream]}.${service}`;
}

/**
 * Why an envelope may not travel on `subject`, or null when it may: a subject carries exactly the
 * event type it names (`<root>.<type>.<service>`) about the service it names, so a message of one
 * type published on another's subject (by a user allowed to write there) is refused.
 */
export function subjectMismatch(
  ns: Namespace,
  subject: string,
  envelope: { readonly type: string; readonly service: string },
): string | null {
  const expected = eventSubject(ns, envelope.type, envelope.service);
  if (subject === expected) return null;
  const service = serviceOfSubject(subject);
  if (service !== envelope.service) {
    return `service ${envelope.service} does not belong on ${subject} (it is about ${service})`;
  }
  return `type ${envelope.type} does not belong on ${subject}`;
}

/** The service a subject is about: its last token. */
export function serviceOfSubject(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}
