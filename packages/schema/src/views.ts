import { z } from "zod";
import {
  Actor,
  GateReason,
  GateVerdictKind,
  IncidentClass,
  IncidentState,
  ProposalKind,
  ProposalState,
  Severity,
} from "./domain.js";
import { RevertTarget, RollbackHarm } from "./events.js";
import { ResourceName, Timestamp } from "./primitives.js";

/** One incident transition as CONTRACT.md shows it. */
export const IncidentTransition = z.object({
  from: IncidentState.nullable(),
  to: IncidentState,
  at: Timestamp,
  actor: Actor,
  reason: z.string(),
  link: z.string().optional(),
});
export type IncidentTransition = z.infer<typeof IncidentTransition>;

/** The incident shape of the HTTP API and of command replies (CONTRACT.md, "Core shapes"). */
export const IncidentView = z.object({
  id: z.string(),
  service: ResourceName,
  state: IncidentState,
  severity: Severity,
  class: IncidentClass,
  openedAt: Timestamp,
  updatedAt: Timestamp,
  transitions: z.array(IncidentTransition),
});
export type IncidentView = z.infer<typeof IncidentView>;

export const Approval = z.object({ by: Actor, at: Timestamp, reason: z.string() });
export type Approval = z.infer<typeof Approval>;

export const ProposalAction = z.object({
  branch: z.string(),
  commit: z.string(),
  prUrl: z.string().nullable(),
  diff: z.string(),
});
export type ProposalAction = z.infer<typeof ProposalAction>;

/** The proposal shape of the HTTP API and of command replies (CONTRACT.md, "Core shapes"). */
export const ProposalView = z.object({
  id: z.string(),
  service: ResourceName,
  incidentId: z.string().nullable(),
  kind: ProposalKind,
  state: ProposalState,
  createdAt: Timestamp,
  approvals: z.array(Approval),
  action: ProposalAction.nullable(),
  /**
   * What approving would push, computed by a dry run of the git actuator when the proposal was
   * made (`error` when the dry run found it ambiguous); absent until the dry run answered.
   */
  preview: z
    .object({
      diff: z.string(),
      error: z.string().nullable(),
      /** For a revert: the commit it reverts (id, author, time, subject) and why that one. */
      target: RevertTarget.nullable().optional(),
      /** Why the revert would re-apply harm (the proposal then needs triage). */
      harm: RollbackHarm.nullable().optional(),
    })
    .nullable()
    .optional(),
  /** For a release train's promotion: the distinct approvals it needs. */
  required: z.number().int().positive().optional(),
});
export type ProposalView = z.infer<typeof ProposalView>;

/** May this service be promoted now, and why not (CONTRACT.md, "gate"). */
export const GateView = z.object({
  service: ResourceName,
  /** True exactly when `verdict` is `pass`. */
  allowed: z.boolean(),
  verdict: GateVerdictKind,
  reasons: z.array(GateReason),
  evaluatedAt: Timestamp,
  /**
   * Seconds from the oldest SLO's newest evaluation to `evaluatedAt` (how old the evidence is);
   * null when an SLO has none.
   */
  evidenceAge: z.number().nullable(),
});
export type GateView = z.infer<typeof GateView>;

export const FreezeView = z.object({
  id: z.string(),
  service: ResourceName,
  from: Timestamp,
  until: Timestamp,
  reason: z.string(),
  actor: Actor,
  origin: z.enum(["manual", "exhaustion"]),
});
export type FreezeView = z.infer<typeof FreezeView>;

/** A failed release-train guard that blocks a service's gate until cleared. */
export const GuardView = z.object({
  id: z.string(),
  service: ResourceName,
  train: ResourceName,
  trainId: z.string(),
  step: z.number().int().nonnegative().nullable(),
  reason: z.string(),
  evidence: z.array(z.string()),
  at: Timestamp,
  clearedAt: Timestamp.nullable(),
  clearedBy: Actor.nullable(),
});
export type GuardView = z.infer<typeof GuardView>;

/** The canary step a service is in, and the weight a healthy bake promotes it to. */
export const CanaryView = z.object({
  service: ResourceName,
  weight: z.number().int().min(0).max(100),
  since: Timestamp,
  next: z.number().int().min(1).max(100).nullable(),
});
export type CanaryView = z.infer<typeof CanaryView>;

/** One step of a release train as the API shows it. */
export const TrainStepView = z.object({
  index: z.number().int().nonnegative(),
  service: ResourceName,
  /** What the step changes, e.g. `image registry/checkout:v1.6.0`. */
  change: z.string(),
  /** Where the step is, as the train's state machine names it (e.g. pending, guarding, passed). */
  phase: z.string(),
  proposalId: z.string(),
  branch: z.string().nullable(),
  commit: z.string().nullable(),
  deployedAt: Timestamp.nullable(),
  guardUntil: Timestamp.nullable(),
  outcome: z.enum(["ok", "warning", "fatal"]).nullable(),
  /** The promotion's unified diff (also of a dry run, which pushes nothing). */
  diff: z.string().nullable(),
  /** The guard's evidence: health checks, regression, gate. */
  evidence: z.array(z.unknown()),
  /** What the service's gate answered before the step's change was requested. */
  gate: z
    .object({ verdict: GateVerdictKind, reasons: z.array(GateReason) })
    .nullable()
    .optional(),
  /** The step's promotion proposal: who approved it, how many must (`awaiting-approval`). */
  approval: z
    .object({
      proposalId: z.string(),
      state: ProposalState,
      required: z.number().int().positive(),
      approvals: z.array(Actor),
    })
    .nullable()
    .optional(),
});
export type TrainStepView = z.infer<typeof TrainStepView>;

/** A follow-up check of a finished train. */
export const FollowUpView = z.object({
  after: z.string(),
  dueAt: Timestamp,
  phase: z.enum(["scheduled", "passed", "failed"]),
  attributedStep: z.number().int().nonnegative().nullable(),
  at: Timestamp.nullable(),
});
export type FollowUpView = z.infer<typeof FollowUpView>;

/** A release train as the API and `train.status` show it. */
export const TrainView = z.object({
  id: z.string(),
  name: ResourceName,
  state: z.enum(["running", "completed", "halted", "needs-triage"]),
  dryRun: z.boolean(),
  actor: Actor,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  reason: z.string().nullable(),
  steps: z.array(TrainStepView),
  followUps: z.array(FollowUpView),
  /** The revert proposed for the one failing step's service, if any (a person approves it). */
  revert: z
    .object({ proposalId: z.string(), service: ResourceName, step: z.number().int() })
    .nullable(),
  /** When the failing service could not be told: the steps suspected and the evidence. */
  triage: z.object({ steps: z.array(z.number().int()), evidence: z.array(z.string()) }).nullable(),
  /** The release manifest (JSON) as core's builder makes it. */
  manifest: z.record(z.string(), z.unknown()),
});
export type TrainView = z.infer<typeof TrainView>;
