import { z } from "zod";
import { ProposalKind, ProposalState } from "./domain.js";
import { ProposalPlan } from "./plans.js";

/**
 * A proposal as the proposal service keeps it in the `proposals` bucket, by id: what the git
 * actuator reads (and only reads) to check that what it is asked to do was approved.
 */
export const ProposalRecord = z.object({
  id: z.string(),
  key: z.string(),
  service: z.string(),
  incidentId: z.string().nullable(),
  kind: ProposalKind,
  state: ProposalState,
  createdAt: z.string(),
  causeId: z.string(),
  summary: z.string(),
  plan: ProposalPlan,
  approvals: z.array(z.object({ by: z.string(), at: z.string(), reason: z.string() })),
  required: z.number().int().positive(),
});
export type ProposalRecord = z.infer<typeof ProposalRecord>;

/**
 * One stream's audit chain head as committed, in the `audit-anchors` bucket (written by the audit
 * service, read by `audit verify`): the row at `position` (stream sequence `seq`) has `hash`.
 */
export const ChainHead = z.object({
  position: z.number().int().positive(),
  seq: z.number().int().nonnegative(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, { message: "must be a sha256 hex digest" }),
});
export type ChainHead = z.infer<typeof ChainHead>;
