/**
 * What goes into `decideTrain` (a {@link TrainEvent}: something that happened) and what comes
 * out (a {@link TrainDecision}: the next state, the events to publish, the actions to do).
 */
import type {
  GateReason,
  GateVerdictKind,
  HealthCheck,
  ImagePlan,
  NewEvent,
  PatchPlan,
  ProposalState,
} from "@safedeploy/schema";
import type { CheckResult } from "./checks.js";
import type { HookName } from "./ids.js";
import type { PlannedChange, PromotionStrategy } from "./plan.js";
import type {
  CheckTarget,
  HookChange,
  HookPayload,
  PromotionApproval,
  StepReport,
  TrainState,
} from "./types.js";

/**
 * What happened, as the service feeds it to `decideTrain`. An event that does not fit the
 * state (wrong phase, premature, already applied) changes nothing.
 */
export type TrainEvent =
  | { readonly type: "step-promoted"; readonly step: number; readonly commit: string }
  /**
   * The step's change was already in the environment repo (a train run again, say): nothing was
   * committed; the step is checked as if promoted, but it has nothing of this train to revert.
   */
  | { readonly type: "step-in-place"; readonly step: number; readonly reason: string }
  | { readonly type: "step-failed"; readonly step: number; readonly reason: string }
  | { readonly type: "guard-elapsed"; readonly step: number }
  | {
      readonly type: "checks-reported";
      readonly step: number;
      /** Must include the report of `step`; may include earlier steps (re-checked). */
      readonly reports: readonly StepReport[];
    }
  | {
      readonly type: "final-checks-reported";
      readonly checks: readonly CheckResult[];
      readonly reports: readonly StepReport[];
    }
  | { readonly type: "follow-up-due"; readonly index: number }
  /** A `deploying` step's next probe is due (its `nextProbeAt` passed). */
  | { readonly type: "deploy-probe-due"; readonly step: number }
  /** What a `probe-deployed` action's probe gave. */
  | { readonly type: "deploy-probed"; readonly step: number; readonly result: CheckResult }
  /**
   * What a hook gave: a `call-hook` call (2xx is `ok`; otherwise the status and a body excerpt),
   * or an `apply-manifest-hook` change (the git actuator's commit, or why it could not be made).
   */
  | {
      readonly type: "hook-reported";
      readonly step: number;
      readonly hook: HookName;
      readonly ok: boolean;
      readonly status: number | null;
      readonly detail: string;
      readonly change?: HookChange;
    }
  | {
      readonly type: "follow-up-reported";
      readonly index: number;
      readonly checks: readonly CheckResult[];
      readonly reports: readonly StepReport[];
    }
  /** What an `ask-gate` action's gate answered (`gating` step). */
  | {
      readonly type: "gate-answered";
      readonly step: number;
      readonly verdict: GateVerdictKind;
      readonly reasons: readonly GateReason[];
      readonly evidenceAge: number | null;
    }
  /**
   * What the proposal service answered a `request-approval` (`proposing` step): the proposal's
   * state, the approvals it needs (null: not said) and has, and who rejected it, when known.
   */
  | {
      readonly type: "approval-answered";
      readonly step: number;
      readonly state: ProposalState;
      readonly required: number | null;
      readonly approvals: readonly PromotionApproval[];
      readonly rejection?: { readonly by: string; readonly reason: string } | null;
    }
  /**
   * A person approved the step's promotion proposal (`governance.proposal-approved`);
   * `approved`: the proposal now has its required distinct approvals.
   */
  | {
      readonly type: "promotion-approved";
      readonly step: number;
      readonly by: string;
      readonly at: string;
      readonly required: number;
      readonly approved: boolean;
    }
  /** A person rejected the step's promotion proposal (`governance.proposal-rejected`). */
  | {
      readonly type: "promotion-rejected";
      readonly step: number;
      readonly by: string;
      readonly reason: string;
    };

/**
 * What the git actuator is asked to do for a step's promotion (`governance.action-requested`
 * plan), and what its proposal shows: set the image in, or merge a patch into, the manifests
 * under the service's path.
 */
export type PromotionPlan = ImagePlan | PatchPlan;

/** What the service must do next. Pure data; executing it is the service's job. */
export type TrainAction =
  /**
   * Request the step's change from the git actuator: decided only once its gate passed and its
   * approvals are complete.
   */
  | {
      readonly kind: "promote";
      readonly step: number;
      readonly service: string;
      readonly change: PlannedChange;
      readonly strategy: PromotionStrategy;
    }
  /** Ask the service's gate (`gate.query`); feed back `gate-answered`. Also in a dry run. */
  | { readonly kind: "ask-gate"; readonly step: number; readonly service: string }
  /**
   * Ask the proposal service for the step's promotion proposal (`proposal.promotion`, the
   * train's starter as its first approval); feed back `approval-answered`. Never in a dry run.
   */
  | {
      readonly kind: "request-approval";
      readonly step: number;
      readonly service: string;
      readonly proposalId: string;
      readonly summary: string;
      readonly plan: PromotionPlan;
      readonly at: string;
    }
  /**
   * A service failed its guard (checks, regression, gate after the guard window, its hook or
   * deploy, a follow-up): block its gate (`guard.fail`) until its revert is executed or an
   * approver clears it. `at` is the decision's time, so a retry asks the same. Never in a dry run.
   */
  | {
      readonly kind: "fail-guard";
      readonly step: number;
      readonly service: string;
      readonly reason: string;
      readonly evidence: readonly string[];
      readonly at: string;
    }
  /** Probe whether `step`'s change is live (its `deployedWhen`); feed back `deploy-probed`. */
  | {
      readonly kind: "probe-deployed";
      readonly step: number;
      readonly service: string;
      readonly check: HealthCheck;
    }
  /** Fire `guard-elapsed` for `step` at `until` (a durable timer). */
  | { readonly kind: "wait"; readonly step: number; readonly until: string }
  | { readonly kind: "run-checks"; readonly step: number; readonly targets: readonly CheckTarget[] }
  | {
      readonly kind: "run-final-checks";
      readonly checks: readonly HealthCheck[];
      readonly targets: readonly CheckTarget[];
    }
  /** Fire `follow-up-due` for `index` at `dueAt` (a durable timer). */
  | { readonly kind: "schedule-follow-up"; readonly index: number; readonly dueAt: string }
  | {
      readonly kind: "run-follow-up";
      readonly index: number;
      readonly checks: readonly HealthCheck[];
      readonly targets: readonly CheckTarget[];
    }
  /** Propose a revert of this step's change, scoped to the service's path only. */
  | {
      readonly kind: "propose-revert";
      readonly step: number;
      readonly service: string;
      readonly path: string;
      readonly commit: string | null;
      readonly reason: string;
      readonly evidence: readonly string[];
    }
  | {
      readonly kind: "manual-triage";
      readonly reason: string;
      readonly evidence: readonly string[];
    }
  /**
   * Call one http hook of a step: `method` `url` with `headers`, `Idempotency-Key:
   * idempotencyKey` and `body` as JSON; feed back `hook-reported`. Never decided in a dry run.
   */
  | {
      readonly kind: "call-hook";
      readonly step: number;
      readonly service: string;
      readonly hook: HookName;
      readonly url: string;
      readonly method: "POST" | "PUT";
      readonly headers: Readonly<Record<string, string>>;
      readonly idempotencyKey: string;
      readonly body: HookPayload;
    }
  /**
   * Have the git actuator apply a manifest hook: a JSON merge `patch` of the workload under
   * `path`, on branch `safedeploy/<actionId>` (in a dry run: the diff only); feed back
   * `hook-reported` with the commit, or why it could not be made.
   */
  | {
      readonly kind: "apply-manifest-hook";
      readonly step: number;
      readonly service: string;
      readonly hook: HookName;
      /** `<trainId>-s<n>-<hook>`, as `hookIdempotencyKey`. */
      readonly actionId: string;
      readonly path: string;
      readonly patch: PatchPlan["patch"];
    };

export type TrainEventType =
  | "governance.train-started"
  | "governance.train-step"
  | "governance.train-finished"
  | "governance.follow-up";

/** An event for the service to publish, with its deterministic id. */
export type TrainNewEvent = {
  [T in TrainEventType]: NewEvent<T>;
}[TrainEventType];

export interface TrainDecision {
  readonly state: TrainState;
  readonly events: readonly TrainNewEvent[];
  readonly actions: readonly TrainAction[];
  /** False when the event did not fit the state: nothing to save, publish or do. */
  readonly changed: boolean;
  /** Why an event changed nothing. */
  readonly ignored?: string;
}
