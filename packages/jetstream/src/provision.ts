import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { ConsumerConfig, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  SAFEDEPLOY_TOPOLOGY,
  eventSubjectFilter,
  parseDuration,
  qualifiedName,
  streamSubjectFilter,
} from "@safedeploy/schema";
import type {
  ConsumerDeclaration,
  Namespace,
  StreamDeclaration,
  Topology,
} from "@safedeploy/schema";
import { z } from "zod";
import type { Bus } from "./connection.js";

/** How many replicas streams and buckets get, and whether that was asked for or implied. */
export interface Replicas {
  readonly count: number;
  /** Asked for (option or `SAFEDEPLOY_NATS_REPLICAS`): existing streams are changed to it too. */
  readonly explicit: boolean;
}

/** The replica counts JetStream accepts. */
const ReplicaCount = z.coerce.number().int().min(1).max(5);

/**
 * The replicas of every stream and KV bucket: `requested` (an option), else
 * `SAFEDEPLOY_NATS_REPLICAS`, else implied by the server: 3 (or fewer on a smaller cluster) when
 * it is one of a cluster, 1 on a single server. A cluster's size is what its members advertise to
 * clients (`connect_urls`, itself included).
 */
export function resolveReplicas(
  bus: Pick<Bus, "connection">,
  requested?: number,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Replicas {
  const fromEnv = env.SAFEDEPLOY_NATS_REPLICAS;
  const asked = requested ?? (fromEnv === "" ? undefined : fromEnv);
  if (asked !== undefined) {
    const parsed = ReplicaCount.safeParse(asked);
    if (!parsed.success) {
      throw new Error(
        `SAFEDEPLOY_NATS_REPLICAS must be a whole number from 1 to 5 (got "${String(asked)}")`,
      );
    }
    return { count: parsed.data, explicit: true };
  }
  const info = bus.connection.info;
  if (info?.cluster === undefined || info.cluster === "") return { count: 1, explicit: false };
  const members = info.connect_urls?.length ?? 1;
  return { count: Math.min(3, Math.max(1, members)), explicit: false };
}

/** What provisioning did to each resource, by qualified name. */
export interface ProvisionReport {
  readonly created: string[];
  readonly updated: string[];
  readonly unchanged: string[];
}

const NANOS_PER_MS = 1_000_000;

function nanos(duration: string): number {
  const ms = parseDuration(duration);
  if (ms === undefined) throw new Error(`invalid duration in topology: ${duration}`);
  return ms * NANOS_PER_MS;
}

/** The server-side stream config a declaration stands for. */
export function streamConfig(ns: Namespace, stream: StreamDeclaration, replicas = 1) {
  return {
    name: qualifiedName(ns, stream.name),
    subjects: [streamSubjectFilter(ns, stream.name)],
    // Limits retention: the streams are the replay log, never a work queue.
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: stream.maxAge === null ? 0 : nanos(stream.maxAge),
    duplicate_window: nanos(stream.duplicateWindow),
    deny_delete: true,
    deny_purge: true,
    num_replicas: replicas,
  } satisfies Partial<StreamConfig>;
}

/** The subject filter of a consumer: one event type, or the whole stream. */
export function consumerFilter(ns: Namespace, consumer: ConsumerDeclaration): string {
  return consumer.filter === ">"
    ? streamSubjectFilter(ns, consumer.stream)
    : eventSubjectFilter(ns, consumer.filter, ">");
}

/** The server-side consumer config a declaration stands for. */
export function consumerConfig(ns: Namespace, consumer: ConsumerDeclaration) {
  return {
    durable_name: qualifiedName(ns, consumer.durable),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: consumerFilter(ns, consumer),
    ack_wait: nanos(consumer.ackWait),
    // Dead-lettering is counted by the consumer loop; the server must never drop a message
    // silently, so it redelivers without limit and the loop decides.
    max_deliver: -1,
    max_ack_pending: consumer.maxAckPending,
  } satisfies Partial<ConsumerConfig>;
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamNotFound ||
      error.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

function differs(wanted: Record<string, unknown>, actual: object): boolean {
  const current = actual as Record<string, unknown>;
  return Object.entries(wanted).some(
    ([key, value]) => JSON.stringify(current[key]) !== JSON.stringify(value),
  );
}

/**
 * Creates the stream, or brings its managed fields back to the declaration. `replicas` (see
 * {@link resolveReplicas}): an explicit count is also applied to an existing stream; an implied one
 * only to a new stream, so an existing stream keeps the replicas it has.
 */
export async function ensureStream(
  bus: Bus,
  stream: StreamDeclaration,
  report: ProvisionReport = { created: [], updated: [], unchanged: [] },
  replicas: Replicas = { count: 1, explicit: false },
): Promise<ProvisionReport> {
  const config = streamConfig(bus.ns, stream, replicas.count);
  try {
    const info = await bus.jsm.streams.info(config.name);
    if (!replicas.explicit) config.num_replicas = info.config.num_replicas;
    if (differs(config, info.config)) {
      await bus.jsm.streams.update(config.name, config);
      report.updated.push(config.name);
    } else {
      report.unchanged.push(config.name);
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await bus.jsm.streams.add(config);
    report.created.push(config.name);
  }
  return report;
}

/** Creates the durable consumer, or brings its managed fields back to the declaration. */
export async function ensureConsumer(
  bus: Bus,
  consumer: ConsumerDeclaration,
  report: ProvisionReport = { created: [], updated: [], unchanged: [] },
): Promise<ProvisionReport> {
  const stream = qualifiedName(bus.ns, consumer.stream);
  const config = consumerConfig(bus.ns, consumer);
  const label = `${stream}/${config.durable_name}`;
  try {
    const info = await bus.jsm.consumers.info(stream, config.durable_name);
    if (differs(config, info.config)) {
      await bus.jsm.consumers.update(stream, config.durable_name, config);
      report.updated.push(label);
    } else {
      report.unchanged.push(label);
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await bus.jsm.consumers.add(stream, config);
    report.created.push(label);
  }
  return report;
}

/** A durable the provisioner has not created (yet): a bound-only service waits for it. */
export class ConsumerMissingError extends Error {
  override readonly name = "ConsumerMissingError";
}

/**
 * Makes sure a durable is there to consume from. Without a NATS user (a development server with
 * no authorisation) it is created or brought back to its declaration ({@link ensureConsumer}), as
 * before. Connected as a user, it only binds: it looks the durable up and fails with
 * {@link ConsumerMissingError} when it is missing, since service users may create or update no
 * consumer (`safedeploy provision` does, as the provisioner).
 */
export async function attachConsumer(
  bus: Bus,
  consumer: ConsumerDeclaration,
): Promise<ProvisionReport> {
  if (bus.user === undefined) return ensureConsumer(bus, consumer);
  const stream = qualifiedName(bus.ns, consumer.stream);
  const durable = qualifiedName(bus.ns, consumer.durable);
  try {
    await bus.jsm.consumers.info(stream, durable);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new ConsumerMissingError(
      `durable ${stream}/${durable} does not exist: run \`safedeploy provision\` as the provisioner`,
    );
  }
  return { created: [], updated: [], unchanged: [`${stream}/${durable}`] };
}

/**
 * The stream sequence up to which a durable acknowledged every message it was delivered (its ack
 * floor), or null when its stream or the durable does not exist.
 */
export async function acknowledgedThrough(
  bus: Bus,
  consumer: ConsumerDeclaration,
): Promise<number | null> {
  try {
    const info = await bus.jsm.consumers.info(
      qualifiedName(bus.ns, consumer.stream),
      qualifiedName(bus.ns, consumer.durable),
    );
    return info.ack_floor.stream_seq;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * Provisions every stream, durable consumer and KV bucket of the topology. Safe to run from
 * every replica at every start: a second run reports everything unchanged.
 */
export async function provision(
  bus: Bus,
  topology: Topology = SAFEDEPLOY_TOPOLOGY,
  options: { readonly replicas?: number } = {},
): Promise<ProvisionReport> {
  const replicas = resolveReplicas(bus, options.replicas);
  const report: ProvisionReport = { created: [], updated: [], unchanged: [] };
  for (const stream of topology.streams) await ensureStream(bus, stream, report, replicas);
  for (const consumer of topology.consumers) await ensureConsumer(bus, consumer, report);
  const kvm = new Kvm(bus.js);
  for (const bucket of topology.buckets) {
    const name = qualifiedName(bus.ns, bucket.name);
    try {
      const info = await bus.jsm.streams.info(`KV_${name}`);
      if (replicas.explicit && info.config.num_replicas !== replicas.count) {
        await bus.jsm.streams.update(`KV_${name}`, {
          ...info.config,
          num_replicas: replicas.count,
        });
        report.updated.push(`KV_${name}`);
      } else {
        report.unchanged.push(`KV_${name}`);
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await kvm.create(name, {
        history: bucket.history,
        description: bucket.description,
        replicas: replicas.count,
      });
      report.created.push(`KV_${name}`);
    }
  }
  return report;
}
