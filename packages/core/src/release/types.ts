/**
 * The durable state of a release train and what it records: steps, hooks, gate and approvals,
 * follow-ups, and the reports and attributions its decisions are built from.
 */
import type { GateReason, GateVerdictKind, HealthCheck, ProposalState } from "@safedeploy/schema";
import type { HookName } from "./ids.js";
import type { CheckOutcome, CheckResult, HaltOn, RegressionResult } from "./checks.js";
import type { PlannedChange, RegressionRule, TrainPlan } from "./plan.js";

/** What the service reports for one promoted step: its checks, regression and gate. */
export interface StepReport {
  readonly step: number;
  readonly service: string;
  readonly checks: readonly CheckResult[];
  /** `null` when the step has no regression rule. */
  readonly regression: RegressionResult | null;
  /** The SLO gate of the service, when it was asked. Anything but `pass` fails the step. */
  readonly gate?: {
    readonly allowed: boolean;
    /** Absent in reports made before the gate was three-valued (then `allowed` decides). */
    readonly verdict?: GateVerdictKind;
    readonly reasons: readonly string[];
  } | null;
}

/** What the service must check for one promoted step (run-checks, final checks, follow-ups). */
export interface CheckTarget {
  readonly step: number;
  readonly service: string;
  readonly checks: readonly HealthCheck[];
  readonly regression: RegressionRule | null;
  /** The recorded deploy time: regression compares before and after it. */
  readonly deployedAt: string;
}

/** Which step introduced a failure: one step, ambiguous (manual triage), or none failed. */
export type Attribution =
  | { readonly kind: "none" }
  | {
      readonly kind: "step";
      readonly step: number;
      readonly service: string;
      readonly evidence: readonly string[];
    }
  | {
      readonly kind: "ambiguous";
      /** The steps whose service failed (empty when only the stack check failed). */
      readonly steps: readonly number[];
      readonly evidence: readonly string[];
    };

/**
 * Where a step is. Before anything is pushed (DESIGN.md invariant 9: the same governance as any
 * proposal): `gating`: the service's gate is asked (again after approvals that came later);
 * `proposing`: the gate passed and the step's promotion proposal is asked for;
 * `awaiting-approval`: the proposal waits for more distinct approvers (durably, for as long as
 * it takes); `blocked`: the gate answered `block` or `unknown`, and `rejected`: the proposal was
 * rejected (or can no longer be approved), both ending the train with nothing pushed.
 * `promoting`: the change is requested from the git actuator; `deploying`: the change is in Git
 * and the step's `deployedWhen` probe is polled until it passes (that moment is the deploy time);
 * `hooking`: the change is live and the strategy's promote (canary) or cutover (blue_green) hook
 * is being run; the guard window starts once it answered.
 */
export type StepPhase =
  | "pending"
  | "gating"
  | "proposing"
  | "awaiting-approval"
  | "blocked"
  | "rejected"
  | "promoting"
  | "deploying"
  | "hooking"
  | "guarding"
  | "checking"
  | "checked"
  | "failed";

/** What a manifest hook committed through the git actuator (in a dry run: would commit). */
export interface HookChange {
  readonly branch: string;
  readonly commit: string;
  readonly prUrl: string | null;
  readonly diff: string;
}

/**
 * What came of one hook of one step, as the state records it (once: a hook whose outcome is
 * recorded is never run again). `requested`: a manifest hook handed to the git actuator, whose
 * outcome has not come back yet; `skipped`: a dry run, which calls no http hook and pushes no
 * manifest change (its would-be diff is in `change`).
 */
export interface HookRecord {
  readonly hook: HookName;
  readonly kind: "http" | "manifest";
  /** The URL called (http) or the manifest path patched (manifest). */
  readonly target: string;
  readonly outcome: "requested" | "ok" | "failed" | "skipped";
  /** The HTTP status, when one came back. */
  readonly status: number | null;
  readonly detail: string;
  readonly at: string;
  /** The commit a manifest hook made (absent for http hooks and when nothing was committed). */
  readonly change?: HookChange;
}

/** The JSON body of an http hook call. `step` counts from 1, as in the idempotency key. */
export interface HookPayload {
  readonly train: string;
  readonly trainId: string;
  readonly step: number;
  readonly service: string;
  readonly change: PlannedChange;
  readonly commit: string | null;
  readonly phase: HookName;
}

/** What a service's gate answered before a step's promotion. */
export interface StepGate {
  readonly verdict: GateVerdictKind;
  readonly reasons: readonly GateReason[];
  readonly at: string;
  /** How old the gate's evidence was, in seconds; null when it had none. */
  readonly evidenceAge: number | null;
}

/** One person's approval of a step's promotion. */
export interface PromotionApproval {
  readonly by: string;
  readonly at: string;
}

/** A step's promotion proposal, as the train knows it from the proposal service. */
export interface StepApproval {
  /** `<trainId>-s<n>`, as `promotionProposalId`. */
  readonly proposalId: string;
  readonly state: ProposalState;
  /** Distinct approvals the promotion needs (the service's `approvals.required`). */
  readonly required: number;
  readonly approvals: readonly PromotionApproval[];
  /** A dry run creates no proposal: it only records how many approvals it would need. */
  readonly dryRun?: boolean;
  /** Who rejected it and why, when it was rejected. */
  readonly rejection?: { readonly by: string; readonly reason: string } | null;
}

export interface StepState {
  readonly index: number;
  readonly service: string;
  readonly phase: StepPhase;
  readonly commit: string | null;
  readonly promotingAt: string | null;
  /** The recorded deploy time of this step. */
  readonly promotedAt: string | null;
  readonly guardUntil: string | null;
  readonly checkedAt: string | null;
  readonly outcome: CheckOutcome | null;
  /** Why the promotion itself failed (`failed`), or why it never started (`blocked`, `rejected`). */
  readonly failure: string | null;
  /** The strategy hooks of this step and what came of them (absent in states saved before). */
  readonly hooks?: readonly HookRecord[];
  /** `deploying`: when to give up, when to probe next (null: a probe is under way). */
  readonly deployDeadline?: string | null;
  readonly nextProbeAt?: string | null;
  /** Why the step's change needed no commit (already in place), when it did not. */
  readonly inPlace?: string | null;
  /** The last `deployedWhen` probe's result, and how many said "not yet". */
  readonly deployProbe?: CheckResult | null;
  readonly deployProbesFailed?: number;
  /** The gate's last answer before the promotion (absent in states saved before). */
  readonly gate?: StepGate | null;
  /** The promotion proposal and its approvals (absent in states saved before). */
  readonly approval?: StepApproval | null;
}

export type FollowUpPhase = "scheduled" | "running" | "passed" | "failed";

export interface FollowUpState {
  readonly index: number;
  readonly after: string;
  readonly dueAt: string;
  readonly phase: FollowUpPhase;
  readonly at: string | null;
  readonly attribution: Attribution | null;
}

export type TrainStatus = "running" | "completed" | "halted" | "needs-triage";

/** The durable state of one train, as the release-train service keeps it. */
export interface TrainState {
  readonly trainId: string;
  readonly plan: TrainPlan;
  readonly dryRun: boolean;
  readonly haltOn: HaltOn;
  readonly startedAt: string;
  readonly status: TrainStatus;
  readonly steps: readonly StepState[];
  readonly final: {
    readonly phase: "pending" | "checking" | "checked";
    readonly outcome: CheckOutcome | null;
  };
  readonly finishedAt: string | null;
  readonly reason: string | null;
  readonly attribution: Attribution | null;
  readonly followUps: readonly FollowUpState[];
}
