import { GateReason, Severity } from "@safedeploy/schema";
import { z } from "zod";

/** Per service: the latest evaluation of each SLO and the last published verdict. */
export const PolicyRecord = z.object({
  slos: z.record(
    z.string(),
    z.object({
      slo: z.string(),
      severity: Severity,
      budgetRemaining: z.number().nullable(),
      burnRates: z
        .array(z.object({ window: z.string(), burnRate: z.number().nullable() }))
        .readonly(),
      evaluatedAt: z.string(),
    }),
  ),
  verdict: z.object({ allowed: z.boolean(), reasons: z.array(GateReason) }).nullable(),
});
export type PolicyRecord = z.infer<typeof PolicyRecord>;

/** Per service: its freeze windows, manual and automatic. */
export const FreezeRecord = z.object({
  freezes: z.array(
    z.object({
      id: z.string(),
      from: z.string(),
      until: z.string(),
      reason: z.string(),
      origin: z.enum(["manual", "exhaustion"]),
      actor: z.string(),
    }),
  ),
});
export type FreezeRecord = z.infer<typeof FreezeRecord>;

/** Per service: the canary step it is in, and when that step was found baked and healthy. */
export const CanaryRecord = z.object({
  weight: z.number().int(),
  since: z.string(),
  healthyAt: z.string().nullable(),
});
export type CanaryRecord = z.infer<typeof CanaryRecord>;
