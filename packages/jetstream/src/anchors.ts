import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { AUDIT_ANCHOR_BUCKET, AUDIT_CONSUMERS, ChainHead, qualifiedName } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { openKv } from "./kv.js";
import { acknowledgedThrough } from "./provision.js";

function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/** What {@link auditAnchors} returns per stream: the acknowledged floor and, if written, the head. */
export interface AuditAnchor {
  readonly stream: string;
  /** Every message up to this sequence was stored (the audit durable's ack floor). */
  readonly storedThrough: number;
  /** The chain head the audit service last anchored, absent when none was written yet. */
  readonly head?: ChainHead;
}

async function anchoredHeads(bus: Bus): Promise<Map<string, ChainHead>> {
  const name = qualifiedName(bus.ns, AUDIT_ANCHOR_BUCKET.name);
  try {
    await bus.jsm.streams.info(`KV_${name}`);
  } catch (error) {
    if (isStreamNotFound(error)) return new Map();
    throw error;
  }
  const kv = await openKv(bus, AUDIT_ANCHOR_BUCKET.name, ChainHead);
  const heads = await Promise.all(
    AUDIT_CONSUMERS.map(async ({ stream }) => [stream, await kv.get(stream)] as const),
  );
  return new Map(
    heads.flatMap(([stream, entry]) => (entry === null ? [] : [[stream, entry.value]])),
  );
}

/**
 * Per stream, what JetStream witnesses of its audit chain: the sequence up to which the audit
 * service acknowledged every message (it acks a batch only once committed), which shows a cut-off
 * tail, and the chain head it anchored after its last batch, which shows a rewrite. A stream whose
 * audit durable does not exist (yet) and that has no anchored head has no anchor.
 */
export async function auditAnchors(bus: Bus): Promise<AuditAnchor[]> {
  const heads = await anchoredHeads(bus);
  const anchors = await Promise.all(
    AUDIT_CONSUMERS.map(async (consumer): Promise<AuditAnchor[]> => {
      const acked = await acknowledgedThrough(bus, consumer);
      const head = heads.get(consumer.stream);
      if (acked === null && head === undefined) return [];
      return [
        {
          stream: consumer.stream,
          storedThrough: acked ?? 0,
          ...(head === undefined ? {} : { head }),
        },
      ];
    }),
  );
  return anchors.flat();
}
