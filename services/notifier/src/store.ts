import { z } from "zod";

/** What the notifier remembers about an incident or a proposal, for the messages that follow. */
export const ContextRecord = z.object({
  incident: z
    .object({
      incidentId: z.string(),
      slo: z.string().nullable(),
      severity: z.string(),
      class: z.string(),
      reason: z.string(),
      budgetRemaining: z.number().nullable(),
    })
    .optional(),
  proposal: z
    .object({
      eventId: z.string(),
      proposalId: z.string(),
      service: z.string(),
      kind: z.string(),
      incidentId: z.string().nullable(),
      summary: z.string(),
      createdAt: z.string(),
    })
    .optional(),
  /** The newest burning evaluation of one SLO of a service. */
  budget: z
    .object({
      severity: z.string(),
      budgetRemaining: z.number().nullable(),
      evaluatedAt: z.string(),
    })
    .optional(),
});
export type ContextRecord = z.infer<typeof ContextRecord>;

/** The key of an incident's or a proposal's facts: ids may hold any character, keys may not. */
export function contextKey(what: "incident" | "proposal" | "budget", id: string): string {
  return `${what}.${Buffer.from(id, "utf8").toString("hex")}`;
}
