import { openKv } from "@safedeploy/jetstream";
import type { Bus, TypedKv } from "@safedeploy/jetstream";
import { AUDIT_ANCHOR_BUCKET, ChainHead } from "@safedeploy/schema";

/** Writes each stream's committed chain head to the anchor bucket in JetStream KV. */
export interface HeadAnchors {
  /**
   * Records `head` as `stream`'s anchor, compare-and-set so it only moves forward (a replica that
   * commits an older batch later cannot move it back). Throws when NATS fails: the caller naks the
   * batch, and its redelivery (stored already) anchors the head again.
   */
  record(stream: string, head: ChainHead): Promise<void>;
}

/** Opens the anchor bucket (part of the topology: provisioned before the service starts). */
export async function openHeadAnchors(bus: Bus): Promise<HeadAnchors> {
  const kv: TypedKv<ChainHead> = await openKv(bus, AUDIT_ANCHOR_BUCKET.name, ChainHead);
  return {
    async record(stream, head) {
      await kv.mutate(stream, (current) =>
        current !== null && current.value.position >= head.position ? undefined : head,
      );
    },
  };
}
