import { z } from "zod";

/**
 * Health of one SLO (or a service: its worst SLO). `no-data` (too little traffic) and `unknown`
 * (the query failed) are neither healthy nor breached.
 */
export const Severity = z.enum([
  "normal",
  "slow-burn",
  "fast-burn",
  "exhausted",
  "no-data",
  "unknown",
]);
export type Severity = z.infer<typeof Severity>;

/**
 * How fast an SLO spends its budget right now: the worst burn-rate rule that fires, else
 * `unknown` (a query failed), `no-data` (too little traffic) or `normal`. Unlike `severity` it
 * does not say whether the budget is spent: a spent budget whose burn stopped is `normal`.
 */
export const Burn = z.enum(["normal", "slow-burn", "fast-burn", "no-data", "unknown"]);
export type Burn = z.infer<typeof Burn>;

/** What is left of an SLO's budget: `low` is under the service's promotion safety margin. */
export const BudgetStatus = z.enum(["ok", "low", "exhausted"]);
export type BudgetStatus = z.infer<typeof BudgetStatus>;

/**
 * The gate's answer: `pass` (promote), `block` (a reason says no), or `unknown` (the gate cannot
 * see: no data, stale evidence, failed queries). Only `pass` allows a promotion.
 */
export const GateVerdictKind = z.enum(["pass", "block", "unknown"]);
export type GateVerdictKind = z.infer<typeof GateVerdictKind>;

/** Incident lifecycle, in order. */
export const IncidentState = z.enum([
  "detected",
  "investigating",
  "mitigated",
  "resolved",
  "postmortem-complete",
]);
export type IncidentState = z.infer<typeof IncidentState>;

/** States in which a service still has an open incident (one at most per service). */
export const ACTIVE_INCIDENT_STATES: readonly IncidentState[] = [
  "detected",
  "investigating",
  "mitigated",
];

/** What opened an incident: a burning SLO, or a structural policy violation. */
export const IncidentOrigin = z.enum(["slo", "policy"]);
export type IncidentOrigin = z.infer<typeof IncidentOrigin>;

/** Incident severity class, P0 the worst. */
export const IncidentClass = z.enum(["P0", "P1", "P2", "P3"]);
export type IncidentClass = z.infer<typeof IncidentClass>;

/**
 * What a proposal (or an action handed to the git actuator) does. `promote-release` is a release
 * train's promotion of one step: set a service's image in its manifests; the person who starts the
 * train is its first approver, and it waits for the service's `approvals.required` like any other.
 */
export const ProposalKind = z.enum([
  "rollback-rollout",
  "promote-canary",
  "block-promotion",
  "promote-release",
]);
export type ProposalKind = z.infer<typeof ProposalKind>;

export const ProposalState = z.enum([
  "pending",
  "approved",
  "executed",
  "rejected",
  "superseded",
  "needs-triage",
]);
export type ProposalState = z.infer<typeof ProposalState>;

/** Who did something: the system itself, or a named user (an API token's name). */
export const Actor = z.string().min(1).max(200);
export type Actor = z.infer<typeof Actor>;

/** A reason for a promotion block, with what was measured against which threshold. */
export const GateReason = z.object({
  code: z.string().min(1),
  message: z.string(),
  value: z.union([z.number(), z.string(), z.null()]),
  threshold: z.union([z.number(), z.string(), z.null()]),
});
export type GateReason = z.infer<typeof GateReason>;
