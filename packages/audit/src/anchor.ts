import { z } from "zod";

/**
 * The JetStream KV bucket (unqualified; the namespace prefix is added by the bus) where the audit
 * service anchors, per stream (the key), the head of its chain after each committed batch. The
 * reader is `auditAnchors` in `@safedeploy/jetstream`, which declares the same bucket and value.
 */
export const AUDIT_ANCHOR_BUCKET = {
  name: "audit-anchors",
  history: 5,
  description: "head (position, hash) of each stream's audit chain after each committed batch",
} as const;

/** One stream's chain head: the row at `position` (stream sequence `seq`) has `hash`. */
export const ChainHead = z.object({
  position: z.number().int().positive(),
  seq: z.number().int().nonnegative(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, { message: "must be a sha256 hex digest" }),
});
export type ChainHead = z.infer<typeof ChainHead>;
