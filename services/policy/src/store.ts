import { Burn, GateReason, GateVerdictKind, Severity } from "@safedeploy/schema";
import { z } from "zod";

/** Per service: the latest evaluation of each SLO and the last published verdict. */
export const PolicyRecord = z.object({
  slos: z.record(
    z.string(),
    z.object({
      slo: z.string(),
      severity: Severity,
      burn: Burn.optional(),
      budgetRemaining: z.number().nullable(),
      burnRates: z
        .array(z.object({ window: z.string(), burnRate: z.number().nullable() }))
        .readonly(),
      evaluatedAt: z.string(),
    }),
  ),
  verdict: z
    .object({
      allowed: z.boolean(),
      /** Absent in records kept before the gate was three-valued. */
      verdict: GateVerdictKind.optional(),
      reasons: z.array(GateReason),
    })
    .nullable(),
  /**
   * The time of the last verdict published: a change judged at an earlier moment (an evaluation
   * arriving after a freeze was lifted, say) is not published, so the verdict never goes back.
   */
  verdictAt: z.string().optional(),
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

/** Per service: the release-train guards it failed, cleared or not. */
export const GuardRecord = z.object({
  guards: z.array(
    z.object({
      id: z.string(),
      train: z.string(),
      trainId: z.string(),
      step: z.number().int().nonnegative().nullable(),
      reason: z.string(),
      evidence: z.array(z.string()),
      at: z.string(),
      clearedAt: z.string().nullable(),
      clearedBy: z.string().nullable(),
      clearReason: z.string().nullable(),
    }),
  ),
});
export type GuardRecord = z.infer<typeof GuardRecord>;

/** Per service: the canary step it is in, and when that step was found baked and healthy. */
export const CanaryRecord = z.object({
  weight: z.number().int(),
  since: z.string(),
  healthyAt: z.string().nullable(),
});
export type CanaryRecord = z.infer<typeof CanaryRecord>;
