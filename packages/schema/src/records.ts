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
