import { z } from "zod";

/** A proposal as the proposal service keeps it, by id: the schema's, which the actuator reads. */
export { ProposalRecord } from "@safedeploy/schema";

/**
 * Per service (key `block.<service>`, beside the proposals): the block-promotion proposal of the
 * latest verdict folded in, or null once promotion is allowed again, and that verdict's time.
 */
export const BlockIndex = z.object({ proposalId: z.string().nullable(), at: z.string() });
export type BlockIndex = z.infer<typeof BlockIndex>;
