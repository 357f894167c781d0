import { ProposalKind, ProposalPlan, ProposalState } from "@safedeploy/schema";
import { z } from "zod";

/** A proposal as the proposal service keeps it, by id (mirrors core's `Proposal`). */
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
 * Per service (key `block.<service>`, beside the proposals): the block-promotion proposal of the
 * latest verdict folded in, or null once promotion is allowed again, and that verdict's time.
 */
export const BlockIndex = z.object({ proposalId: z.string().nullable(), at: z.string() });
export type BlockIndex = z.infer<typeof BlockIndex>;
