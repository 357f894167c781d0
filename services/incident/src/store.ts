import {
  AnyEnvelope,
  BudgetStatus,
  Burn,
  IncidentClass,
  IncidentOrigin,
  IncidentState,
  IncidentTransition,
  Severity,
} from "@safedeploy/schema";
import { z } from "zod";

/** One incident as the incident service keeps it (mirrors core's `Incident`). */
const StoredIncident = z.object({
  id: z.string(),
  service: z.string(),
  origin: IncidentOrigin.default("slo"),
  slo: z.string().nullable(),
  state: IncidentState,
  severity: Severity,
  class: IncidentClass,
  openedAt: z.string(),
  updatedAt: z.string(),
  detectedFrom: z.string(),
  mitigatedAt: z.string().nullable(),
  resolvedAt: z.string().nullable(),
  transitions: z.array(IncidentTransition),
});

/**
 * The KV value per service: the decision state, and an outbox of events decided but not yet
 * confirmed published. Writing both in one compare-and-set means a crash between deciding and
 * publishing loses nothing: the next delivery publishes the outbox first (deduped by message id).
 */
export const ServiceRecord = z.object({
  slos: z.record(
    z.string(),
    z.object({
      severity: Severity,
      /** Absent in records kept before burn and budget were apart. */
      burn: Burn.optional(),
      budget: BudgetStatus.nullable().optional(),
      at: z.string(),
      objective: z.number(),
      lastBurnAt: z.string().nullable().optional(),
      normalSince: z.string().nullable().optional(),
    }),
  ),
  incident: StoredIncident.nullable(),
  healthySince: z.string().nullable(),
  burningSince: z.string().nullable().optional(),
  /** The structural violations of the latest verdict folded in, and its time. */
  policy: z.object({ at: z.string(), violations: z.array(z.string()) }).optional(),
  outbox: z.array(AnyEnvelope),
});
export type ServiceRecord = z.infer<typeof ServiceRecord>;

/** Where to find an incident by id: its service (the record's key). */
export const IncidentIndex = z.object({ service: z.string() });
export type IncidentIndex = z.infer<typeof IncidentIndex>;
