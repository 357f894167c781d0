import { AUDIT_ANCHOR_BUCKET, ChainHead } from "@safedeploy/audit";
import { openKv, provision } from "@safedeploy/jetstream";
import type { Bus, TypedKv } from "@safedeploy/jetstream";

/** Writes each stream's committed chain head to the anchor bucket in JetStream KV. */
export interface HeadAnchors {
  /**
   * Records `head` as `stream`'s anchor, compare-and-set so it only moves forward (a replica that
   * commits an older batch later cannot move it back). Throws when NATS fails: the caller naks the
   * batch, and its redelivery (stored already) anchors the head again.
   */
  record(stream: string, head: ChainHead): Promise<void>;
}

/**
 * Opens the anchor bucket, creating it when the deployment has not provisioned it (a provisioning
 * run that already created it leaves it unchanged).
 */
export async function openHeadAnchors(bus: Bus): Promise<HeadAnchors> {
  await provision(bus, { streams: [], consumers: [], buckets: [AUDIT_ANCHOR_BUCKET] });
  const kv: TypedKv<ChainHead> = await openKv(bus, AUDIT_ANCHOR_BUCKET.name, ChainHead);
  return {
    async record(stream, head) {
      await kv.mutate(stream, (current) =>
        current !== null && current.value.position >= head.position ? undefined : head,
      );
    },
  };
}
