import { messageId } from "@safedeploy/schema";
import { hookIdempotencyKey, promotionProposalId } from "./ids.js";
import type { HookName } from "./ids.js";
import type {
  GateReason,
  GateVerdictKind,
  HealthCheck,
  Hook,
  ImagePlan,
  NewEvent,
  PatchPlan,
  ProposalState,
} from "@safedeploy/schema";
import { haltsTrain, worstOutcome } from "./release-checks.js";
import type { CheckOutcome, CheckResult, HaltOn, RegressionResult } from "./release-checks.js";
import type {
  PlannedChange,
  PlannedStep,
  PromotionStrategy,
  RegressionRule,
  TrainPlan,
} from "./release-plan.js";

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

/** The longest wait between two `deployedWhen` probes of a `deploying` step. */
export const DEPLOY_PROBE_INTERVAL_MS = 5_000;

/**
 * How long to wait before probing again after `failed` probes that said "not yet": 1 s, 2 s,
 * 4 s, then every {@link DEPLOY_PROBE_INTERVAL_MS} (a sync usually lands within seconds).
 */
export function deployProbeDelayMs(failed: number): number {
  return Math.min(DEPLOY_PROBE_INTERVAL_MS, 1_000 * 2 ** Math.max(0, failed - 1));
}

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
  /** `<trainId>-s<n>`, as {@link promotionProposalId}. */
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

/**
 * What happened, as the service feeds it to {@link decideTrain}. An event that does not fit the
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
      /** `<trainId>-s<n>-<hook>`, as {@link hookIdempotencyKey}. */
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

function addMs(at: string, ms: number): string {
  return new Date(Date.parse(at) + ms).toISOString();
}

/** The phases a `governance.train-step` event reports. */
type ReportedPhase =
  | "promoting"
  | "promoted"
  | "deployed"
  | "guarding"
  | "checked"
  | "awaiting-approval"
  | "blocked"
  | "rejected";

/** The phase on the wire: the event's enum has no word yet for a step stopped before its change. */
const WIRE_PHASE: Readonly<
  Record<ReportedPhase, NewEvent<"governance.train-step">["data"]["phase"]>
> = {
  promoting: "promoting",
  promoted: "promoted",
  deployed: "deployed",
  guarding: "guarding",
  checked: "checked",
  "awaiting-approval": "awaiting-approval",
  blocked: "blocked",
  rejected: "rejected",
};

function stepEvent(
  state: TrainState,
  step: number,
  phase: ReportedPhase,
  now: string,
  extra: {
    readonly commit?: string | null;
    readonly outcome?: CheckOutcome | null;
    readonly details?: Record<string, unknown>;
  } = {},
): TrainNewEvent {
  const planned = plannedStep(state.plan, step);
  const wire = WIRE_PHASE[phase];
  return {
    type: "governance.train-step",
    id: messageId("governance.train-step", state.trainId, step, phase),
    service: planned.service,
    data: {
      trainId: state.trainId,
      step,
      phase: wire,
      at: now,
      commit: extra.commit ?? null,
      outcome: extra.outcome ?? null,
      details: { ...(wire === phase ? {} : { phase }), ...extra.details },
    },
  };
}

function finishedEvent(
  state: TrainState,
  outcome: "completed" | "halted" | "needs-triage",
  reason: string,
  now: string,
): TrainNewEvent {
  return {
    type: "governance.train-finished",
    id: messageId("governance.train-finished", state.trainId),
    service: state.plan.train,
    data: { trainId: state.trainId, at: now, outcome, reason },
  };
}

function followUpEvent(
  state: TrainState,
  followUp: FollowUpState,
  phase: "scheduled" | "passed" | "failed",
  now: string,
  details: Record<string, unknown> = {},
): TrainNewEvent {
  return {
    type: "governance.follow-up",
    id: messageId("governance.follow-up", state.trainId, followUp.index, phase),
    service: state.plan.train,
    data: {
      trainId: state.trainId,
      dueAt: followUp.dueAt,
      after: followUp.after,
      phase,
      at: now,
      attributedStep: followUp.attribution?.kind === "step" ? followUp.attribution.step : null,
      details,
    },
  };
}

function plannedStep(plan: TrainPlan, index: number): PlannedStep {
  const step = plan.steps[index];
  if (step === undefined) throw new RangeError(`train has no step ${index}`);
  return step;
}

function promoteAction(plan: TrainPlan, index: number): TrainAction {
  const step = plannedStep(plan, index);
  return {
    kind: "promote",
    step: index,
    service: step.service,
    change: step.change,
    strategy: step.strategy,
  };
}

/** The git actuator's plan for a change (`governance.action-requested`), as its proposal shows it. */
export function promotionPlan(change: PlannedChange): PromotionPlan {
  return change.kind === "image"
    ? { action: "set-image", path: change.path, image: change.image }
    : { action: "patch-manifest", path: change.path, patch: change.patch };
}

/** The check targets of every promoted step up to and including `through`. */
export function checkTargets(state: TrainState, through: number): readonly CheckTarget[] {
  const targets: CheckTarget[] = [];
  for (const step of state.steps) {
    if (step.index > through || step.promotedAt === null) continue;
    const planned = plannedStep(state.plan, step.index);
    targets.push({
      step: step.index,
      service: step.service,
      checks: planned.checks,
      regression: planned.regression,
      deployedAt: step.promotedAt,
    });
  }
  return targets;
}

function withStep(state: TrainState, index: number, update: Partial<StepState>): TrainState {
  return {
    ...state,
    steps: state.steps.map((step) => (step.index === index ? { ...step, ...update } : step)),
  };
}

/** The hook a step's promotion calls once its change landed: canary promote, blue_green cutover. */
export function promotionHook(
  strategy: PromotionStrategy,
): { readonly hook: "promote" | "cutover"; readonly spec: Hook } | null {
  if (strategy.kind === "canary" && strategy.promoteHook !== null)
    return { hook: "promote", spec: strategy.promoteHook };
  if (strategy.kind === "blue_green" && strategy.cutoverHook !== null)
    return { hook: "cutover", spec: strategy.cutoverHook };
  return null;
}

/** The hook of a strategy by name, or null when it has none. */
function plannedHook(strategy: PromotionStrategy, hook: HookName): Hook | null {
  if (hook === "rollback") return strategy.kind === "canary" ? strategy.rollbackHook : null;
  const promotion = promotionHook(strategy);
  return promotion?.hook === hook ? promotion.spec : null;
}

function hooksOf(step: StepState | undefined): readonly HookRecord[] {
  return step?.hooks ?? [];
}

/** Records a hook's outcome, in place of its `requested` record when it had one. */
function withHook(state: TrainState, index: number, record: HookRecord): TrainState {
  const others = hooksOf(state.steps[index]).filter((h) => h.hook !== record.hook);
  return withStep(state, index, { hooks: [...others, record] });
}

/**
 * What running one hook of a step means now: an http hook is a `call-hook` action, a manifest
 * hook an `apply-manifest-hook` action recorded as `requested` (both outcomes come back as
 * `hook-reported`); a dry run calls no http hook, only records it, but does ask the git actuator
 * for a manifest hook's diff (it pushes nothing).
 */
function hookCall(
  state: TrainState,
  index: number,
  hook: HookName,
  spec: Hook,
  now: string,
): { readonly action?: TrainAction; readonly record?: HookRecord } {
  const planned = plannedStep(state.plan, index);
  if ("manifest" in spec) {
    const { path, patch } = spec.manifest;
    return {
      action: {
        kind: "apply-manifest-hook",
        step: index,
        service: planned.service,
        hook,
        actionId: hookIdempotencyKey(state.trainId, index, hook),
        path,
        patch,
      },
      record: {
        hook,
        kind: "manifest",
        target: path,
        outcome: "requested",
        status: null,
        detail: `${state.dryRun ? "dry run: " : ""}patch ${Object.keys(patch).join(", ")} of ${path} through the git actuator`,
        at: now,
      },
    };
  }
  if (state.dryRun) {
    return {
      record: {
        hook,
        kind: "http",
        target: spec.http.url,
        outcome: "skipped",
        status: null,
        detail: `dry run: ${spec.http.method} ${spec.http.url} not called`,
        at: now,
      },
    };
  }
  return {
    action: {
      kind: "call-hook",
      step: index,
      service: planned.service,
      hook,
      url: spec.http.url,
      method: spec.http.method,
      headers: spec.http.headers ?? {},
      idempotencyKey: hookIdempotencyKey(state.trainId, index, hook),
      body: {
        train: state.plan.train,
        trainId: state.trainId,
        step: index + 1,
        service: planned.service,
        change: planned.change,
        commit: state.steps[index]?.commit ?? null,
        phase: hook,
      },
    },
  };
}

/**
 * A step whose change is live (`promotedAt` set): its promotion hook runs, or, without one, its
 * guard window starts.
 */
function afterDeployed(
  state: TrainState,
  index: number,
  now: string,
  events: TrainNewEvent[],
): TrainDecision {
  const hook = promotionHook(plannedStep(state.plan, index).strategy);
  if (hook === null) return startGuard(state, index, now, events);
  const call = hookCall(state, index, hook.hook, hook.spec, now);
  const recorded = call.record === undefined ? state : withHook(state, index, call.record);
  if (call.action === undefined) return startGuard(recorded, index, now, events);
  return {
    state: withStep(recorded, index, { phase: "hooking" }),
    changed: true,
    events,
    actions: [call.action],
  };
}

/** A step whose change landed (and whose promotion hook, if any, answered) starts guarding. */
function startGuard(
  state: TrainState,
  index: number,
  now: string,
  events: TrainNewEvent[],
): TrainDecision {
  const planned = plannedStep(state.plan, index);
  const guardUntil = addMs(now, planned.guardWindowMs);
  const next = withStep(state, index, { phase: "guarding", guardUntil });
  const step = next.steps[index];
  const hooks = hooksOf(step);
  return {
    state: next,
    changed: true,
    events: [
      ...events,
      stepEvent(next, index, "guarding", now, {
        commit: step?.commit ?? null,
        details: {
          guardWindow: planned.guardWindow,
          guardUntil,
          ...(hooks.length === 0 ? {} : { hooks }),
        },
      }),
    ],
    actions: [{ kind: "wait", step: index, until: guardUntil }],
  };
}

/**
 * A step whose turn came asks its service's gate first; so does a step whose approvals came in
 * after the gate was last asked (time passed: the answer may have changed).
 */
function askGate(
  state: TrainState,
  index: number,
): { readonly state: TrainState; readonly action: TrainAction } {
  return {
    state: withStep(state, index, { phase: "gating" }),
    action: { kind: "ask-gate", step: index, service: plannedStep(state.plan, index).service },
  };
}

/** The gate and approval of a step as its `promoting` (or stopped) event reports them. */
function governanceDetails(step: StepState | undefined): Record<string, unknown> {
  const gate = step?.gate ?? null;
  const approval = step?.approval ?? null;
  return {
    ...(gate === null ? {} : { gate: { verdict: gate.verdict, reasons: gate.reasons } }),
    ...(approval === null
      ? {}
      : {
          approval: {
            proposalId: approval.proposalId,
            state: approval.state,
            required: approval.required,
            approvals: approval.approvals.map((a) => a.by),
            ...(approval.dryRun === true ? { dryRun: true } : {}),
          },
        }),
  };
}

/** The step's gate passed and its approvals are complete: its change is requested. */
function promote(state: TrainState, index: number, now: string): TrainDecision {
  const promoting = withStep(state, index, { phase: "promoting", promotingAt: now });
  return {
    state: promoting,
    changed: true,
    events: [
      stepEvent(promoting, index, "promoting", now, {
        details: governanceDetails(promoting.steps[index]),
      }),
    ],
    actions: [promoteAction(state.plan, index)],
  };
}

/**
 * Ends the train at a step stopped before its change was requested (`blocked`, `rejected`):
 * nothing was pushed, so nothing is reverted and no guard failed.
 */
function stopBeforeChange(
  state: TrainState,
  index: number,
  phase: "blocked" | "rejected",
  failure: string,
  now: string,
): TrainDecision {
  const service = plannedStep(state.plan, index).service;
  const reason = `step ${index + 1} (${service}) ${failure}`;
  const stopped = withStep(state, index, { phase, failure });
  const halted: TrainState = {
    ...stopped,
    status: "halted",
    finishedAt: now,
    reason,
    attribution: { kind: "none" },
  };
  return {
    state: halted,
    changed: true,
    events: [
      stepEvent(halted, index, phase, now, {
        details: { reason, ...governanceDetails(halted.steps[index]) },
      }),
      finishedEvent(halted, "halted", reason, now),
    ],
    actions: [],
  };
}

/** `code: message` of each reason, or that there was none. */
function gateReasonsText(reasons: readonly GateReason[]): string {
  return reasons.map((r) => `${r.code}: ${r.message}`).join("; ") || "no reason given";
}

/**
 * `gate-answered` (a `gating` step): anything but `pass` blocks the step and halts the train,
 * nothing pushed. A pass promotes a step whose approvals are complete (they came in after the
 * gate was last asked); a dry run records the approvals it would need and promotes (its
 * promotion pushes nothing); otherwise the step's promotion proposal is asked for.
 */
function onGateAnswered(
  state: TrainState,
  event: Extract<TrainEvent, { type: "gate-answered" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "gating") {
    return ignore(state, `step ${event.step} is not asking its gate`);
  }
  const gate: StepGate = {
    verdict: event.verdict,
    reasons: event.reasons,
    at: now,
    evidenceAge: event.evidenceAge,
  };
  const gated = withStep(state, event.step, { gate });
  if (gate.verdict !== "pass") {
    const how = gate.verdict === "unknown" ? " (unknown: it cannot see)" : "";
    const failure = `blocked by its gate${how}: ${gateReasonsText(gate.reasons)}`;
    return stopBeforeChange(gated, event.step, "blocked", failure, now);
  }
  if (step.approval?.state === "approved") return promote(gated, event.step, now);
  const planned = plannedStep(state.plan, event.step);
  const proposalId = promotionProposalId(state.trainId, event.step);
  if (state.dryRun) {
    const approval: StepApproval = {
      proposalId,
      state: "pending",
      required: planned.approvals ?? 1,
      approvals: [],
      dryRun: true,
    };
    return promote(withStep(gated, event.step, { approval }), event.step, now);
  }
  return {
    state: withStep(gated, event.step, { phase: "proposing" }),
    changed: true,
    events: [],
    actions: [
      {
        kind: "request-approval",
        step: event.step,
        service: planned.service,
        proposalId,
        summary: `release train ${state.plan.train} (${state.trainId}), step ${event.step + 1}: ${planned.summary}`,
        plan: promotionPlan(planned.change),
        at: now,
      },
    ],
  };
}

/** Approvals by distinct people, the first of each kept. */
function distinctApprovals(approvals: readonly PromotionApproval[]): PromotionApproval[] {
  const seen = new Set<string>();
  return approvals.filter((approval) => {
    if (seen.has(approval.by)) return false;
    seen.add(approval.by);
    return true;
  });
}

/** The proposal waits for more approvers: the step waits with it, durably. */
function awaitApproval(state: TrainState, index: number, now: string): TrainDecision {
  const waiting = withStep(state, index, { phase: "awaiting-approval" });
  return {
    state: waiting,
    changed: true,
    events: [
      stepEvent(waiting, index, "awaiting-approval", now, {
        details: governanceDetails(waiting.steps[index]),
      }),
    ],
    actions: [],
  };
}

/** Why a proposal's rejection stops a step: who rejected it and why, when known. */
function rejectionText(approval: StepApproval): string {
  const { rejection } = approval;
  if (approval.state === "rejected") {
    return rejection === null || rejection === undefined
      ? `promotion rejected (proposal ${approval.proposalId})`
      : `promotion rejected by ${rejection.by}: ${rejection.reason}`;
  }
  return `promotion can no longer be approved: proposal ${approval.proposalId} is ${approval.state}`;
}

/**
 * `approval-answered` (a `proposing` step): approved (the starter's approval was enough) →
 * promoted at once, the gate having just passed; pending → `awaiting-approval`; rejected,
 * superseded or needing triage → the train halts, nothing pushed.
 */
function onApprovalAnswered(
  state: TrainState,
  event: Extract<TrainEvent, { type: "approval-answered" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (state.status !== "running" || step?.phase !== "proposing") {
    return ignore(state, `step ${event.step} is not asking for its proposal`);
  }
  const approval: StepApproval = {
    proposalId: promotionProposalId(state.trainId, event.step),
    state: event.state,
    required: event.required ?? plannedStep(state.plan, event.step).approvals ?? 1,
    approvals: distinctApprovals(event.approvals),
    rejection: event.rejection ?? null,
  };
  const recorded = withStep(state, event.step, { approval });
  switch (event.state) {
    case "approved":
    case "executed":
      return promote(recorded, event.step, now);
    case "pending":
      return awaitApproval(recorded, event.step, now);
    default:
      return stopBeforeChange(recorded, event.step, "rejected", rejectionText(approval), now);
  }
}

/**
 * `promotion-approved` (an `awaiting-approval` step): one more person approved. Once the
 * approvals are complete the gate is asked again (time passed since it was), and only its pass
 * promotes.
 */
function onPromotionApproved(
  state: TrainState,
  event: Extract<TrainEvent, { type: "promotion-approved" }>,
): TrainDecision {
  const step = state.steps[event.step];
  const approval = step?.approval ?? null;
  if (state.status !== "running" || step?.phase !== "awaiting-approval" || approval === null) {
    return ignore(state, `step ${event.step} is not awaiting approval`);
  }
  const known = approval.approvals.some((a) => a.by === event.by);
  if (known && !event.approved) return ignore(state, `${event.by} already approved`);
  const approvals = known
    ? approval.approvals
    : [...approval.approvals, { by: event.by, at: event.at }];
  const counted: StepApproval = { ...approval, approvals, required: event.required };
  if (!event.approved) {
    return {
      state: withStep(state, event.step, { approval: counted }),
      changed: true,
      events: [],
      actions: [],
    };
  }
  const approved = withStep(state, event.step, { approval: { ...counted, state: "approved" } });
  const gating = askGate(approved, event.step);
  return { state: gating.state, changed: true, events: [], actions: [gating.action] };
}

/** `promotion-rejected` (a step awaiting or asking for its proposal): the train halts. */
function onPromotionRejected(
  state: TrainState,
  event: Extract<TrainEvent, { type: "promotion-rejected" }>,
  now: string,
): TrainDecision {
  const step = state.steps[event.step];
  if (
    state.status !== "running" ||
    (step?.phase !== "awaiting-approval" && step?.phase !== "proposing")
  ) {
    return ignore(state, `step ${event.step} is not awaiting approval`);
  }
  const approval: StepApproval = {
    proposalId: promotionProposalId(state.trainId, event.step),
    required: plannedStep(state.plan, event.step).approvals ?? 1,
    approvals: [],
    ...step.approval,
    state: "rejected",
    rejection: { by: event.by, reason: event.reason },
  };
  const rejected = withStep(state, event.step, { approval });
  return stopBeforeChange(rejected, event.step, "rejected", rejectionText(approval), now);
}

/**
 * Starts a train: every step pending but the first, whose gate is asked. Emits train-started.
 */
export function startTrain(input: {
  readonly trainId: string;
  readonly plan: TrainPlan;
  readonly dryRun: boolean;
  readonly haltOn?: HaltOn;
  readonly now: string;
}): TrainDecision {
  const { trainId, plan, now } = input;
  const initial: TrainState = {
    trainId,
    plan,
    dryRun: input.dryRun,
    haltOn: input.haltOn ?? "fatal",
    startedAt: now,
    status: "running",
    steps: plan.steps.map((step) => ({
      index: step.index,
      service: step.service,
      phase: "pending",
      commit: null,
      promotingAt: null,
      promotedAt: null,
      guardUntil: null,
      checkedAt: null,
      outcome: null,
      failure: null,
      hooks: [],
      gate: null,
      approval: null,
    })),
    final: { phase: "pending", outcome: null },
    finishedAt: null,
    reason: null,
    attribution: null,
    followUps: [],
  };
  const gating = askGate(initial, 0);
  return {
    state: gating.state,
    changed: true,
    events: [
      {
        type: "governance.train-started",
        id: messageId("governance.train-started", trainId),
        service: plan.train,
        data: {
          trainId,
          train: plan.train,
          at: now,
          dryRun: input.dryRun,
          steps: plan.steps.map((step) => ({ service: step.service, change: step.summary })),
        },
      },
    ],
    actions: [gating.action],
  };
}

/** Whether a report fails under `haltOn`, with the evidence that says so. */
export function reportFailure(
  report: StepReport,
  haltOn: HaltOn,
): {
  readonly outcome: CheckOutcome;
  readonly failed: boolean;
  readonly evidence: readonly string[];
} {
  const evidence: string[] = [];
  const outcomes: CheckOutcome[] = [];
  for (const check of report.checks) {
    outcomes.push(check.outcome);
    for (const failure of check.failures) {
      evidence.push(
        `step ${report.step + 1} ${report.service}: ${check.url} (${check.outcome}): ${failure.message}`,
      );
    }
  }
  if (report.regression?.regressed === true) {
    outcomes.push("fatal");
    for (const finding of report.regression.findings) {
      evidence.push(`step ${report.step + 1} ${report.service}: regression: ${finding.message}`);
    }
  }
  const gate = report.gate ?? null;
  if (gate !== null && (!gate.allowed || (gate.verdict ?? "pass") !== "pass")) {
    outcomes.push("fatal");
    const says = gate.verdict === "unknown" ? "gate cannot see (unknown)" : "gate blocks";
    evidence.push(
      `step ${report.step + 1} ${report.service}: ${says}: ${gate.reasons.join("; ") || "no reason given"}`,
    );
  }
  const outcome = worstOutcome(outcomes);
  return { outcome, failed: haltsTrain(outcome, haltOn), evidence };
}

/**
 * Which step introduced a failure. The services that failed their own signals (health checks,
 * regression, gate) are the suspects: exactly one service → its (latest reported) step; two or
 * more at once, or a failing stack check with no per-service signal → ambiguous, for manual
 * triage with the evidence. A step whose reports are healthy is never named.
 */
export function attributeFailure(input: {
  readonly reports: readonly StepReport[];
  readonly stackChecks?: readonly CheckResult[];
  readonly haltOn: HaltOn;
}): Attribution {
  const failing = input.reports
    .map((report) => ({ report, verdict: reportFailure(report, input.haltOn) }))
    .filter(({ verdict }) => verdict.failed);
  const evidence = failing.flatMap(({ verdict }) => verdict.evidence);
  const stackFailing = (input.stackChecks ?? []).filter((check) =>
    haltsTrain(check.outcome, input.haltOn),
  );
  for (const check of stackFailing) {
    for (const failure of check.failures)
      evidence.push(`stack: ${check.url} (${check.outcome}): ${failure.message}`);
  }
  const services = new Set(failing.map(({ report }) => report.service));
  if (services.size === 1) {
    const step = Math.max(...failing.map(({ report }) => report.step));
    const service = failing[0]?.report.service ?? "";
    return { kind: "step", step, service, evidence };
  }
  if (services.size > 1) {
    return {
      kind: "ambiguous",
      steps: [...new Set(failing.map(({ report }) => report.step))].sort((a, b) => a - b),
      evidence: [
        `${services.size} services failing at once: ${[...services].join(", ")}`,
        ...evidence,
      ],
    };
  }
  if (stackFailing.length > 0) {
    return {
      kind: "ambiguous",
      steps: [],
      evidence: ["the stack check failed with no per-service signal", ...evidence],
    };
  }
  return { kind: "none" };
}

/**
 * What undoes a failing step: a revert proposal of its service's path, beside the canary's
 * rollback hook (called at most once per step); manual triage when the step is ambiguous.
 */
function remedy(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
): { readonly state: TrainState; readonly actions: TrainAction[] } {
  if (attribution.kind === "step") {
    const step = state.steps[attribution.step];
    const inPlace = step?.inPlace ?? null;
    if (inPlace !== null) {
      // This train changed nothing there: reverting "its" change would undo an earlier release.
      return {
        state,
        actions: [
          {
            kind: "manual-triage",
            reason: `${reason}; step ${attribution.step + 1}'s change was already in place before this train (${inPlace}), so the train has nothing of its own to revert`,
            evidence: attribution.evidence,
          },
        ],
      };
    }
    const planned = plannedStep(state.plan, attribution.step);
    const actions: TrainAction[] = [
      {
        kind: "propose-revert",
        step: attribution.step,
        service: attribution.service,
        path: planned.change.path,
        commit: step?.commit ?? null,
        reason,
        evidence: attribution.evidence,
      },
    ];
    const { strategy } = planned;
    const called = hooksOf(step).some((h) => h.hook === "rollback");
    if (strategy.kind !== "canary" || strategy.rollbackHook === null || called) {
      return { state, actions };
    }
    const rollback = hookCall(state, attribution.step, "rollback", strategy.rollbackHook, now);
    return {
      state:
        rollback.record === undefined ? state : withHook(state, attribution.step, rollback.record),
      actions: rollback.action === undefined ? actions : [...actions, rollback.action],
    };
  }
  if (attribution.kind === "ambiguous") {
    return { state, actions: [{ kind: "manual-triage", reason, evidence: attribution.evidence }] };
  }
  return { state, actions: [] };
}

/**
 * The guards a failure fails: the one failing step's service (also when its change was already
 * in place: the service is failing all the same), or, when ambiguous, every service whose own
 * signals failed (none when only the stack check did), each at its latest failing step. Each
 * service's gate then blocks until its revert is executed or an approver clears it. Asked first,
 * before any revert. A dry run fails none.
 */
function guardFailures(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
): TrainAction[] {
  if (state.dryRun || attribution.kind === "none") return [];
  const steps = attribution.kind === "step" ? [attribution.step] : attribution.steps;
  const latest = new Map<string, number>();
  for (const index of steps) {
    const service = plannedStep(state.plan, index).service;
    latest.set(service, Math.max(index, latest.get(service) ?? index));
  }
  return [...latest]
    .sort(([, a], [, b]) => a - b)
    .map(([service, step]) => ({
      kind: "fail-guard" as const,
      step,
      service,
      reason,
      evidence: attribution.evidence,
      at: now,
    }));
}

function ignore(state: TrainState, why: string): TrainDecision {
  return { state, events: [], actions: [], changed: false, ignored: why };
}

function halt(
  state: TrainState,
  attribution: Attribution,
  reason: string,
  now: string,
  events: TrainNewEvent[],
): TrainDecision {
  // A step whose change was already in place is this train's to blame for nothing: a person looks.
  const revertible =
    attribution.kind === "step" && (state.steps[attribution.step]?.inPlace ?? null) === null;
  const outcome = revertible ? "halted" : "needs-triage";
  const halted: TrainState = {
    ...state,
    status: outcome,
    finishedAt: now,
    reason,
    attribution,
  };
  const remedied = remedy(halted, attribution, reason, now);
  return {
    state: remedied.state,
    changed: true,
    events: [...events, finishedEvent(halted, outcome, reason, now)],
    actions: [...guardFailures(halted, attribution, reason, now), ...remedied.actions],
  };
}

/** Halts the train on a step that failed on its own (`failure`): that step is to blame. */
function haltAtStep(state: TrainState, index: number, failure: string, now: string): TrainDecision {
  const service = plannedStep(state.plan, index).service;
  return halt(
    state,
    {
      kind: "step",
      step: index,
      service,
      evidence: [`step ${index + 1} ${service}: ${failure}`],
    },
    `step ${index + 1} (${service}) ${failure}`,
    now,
    [],
  );
}

function complete(state: TrainState, now: string, events: TrainNewEvent[]): TrainDecision {
  const followUps: FollowUpState[] = state.plan.followUps.map((followUp, index) => ({
    index,
    after: followUp.after,
    dueAt: addMs(now, followUp.afterMs),
    phase: "scheduled",
    at: null,
    attribution: null,
  }));
  const reason = `all ${state.plan.steps.length} steps promoted and checked`;
  const completed: TrainState = {
    ...state,
    status: "completed",
    finishedAt: now,
    reason,
    followUps,
  };
  return {
    state: completed,
    changed: true,
    events: [
      ...events,
      finishedEvent(completed, "completed", reason, now),
      ...followUps.map((followUp) => followUpEvent(completed, followUp, "scheduled", now)),
    ],
    actions: followUps.map((followUp) => ({
      kind: "schedule-follow-up" as const,
      index: followUp.index,
      dueAt: followUp.dueAt,
    })),
  };
}

function summary(reports: readonly StepReport[]): Record<string, unknown> {
  return {
    reports: reports.map((report) => ({
      step: report.step,
      service: report.service,
      checks: report.checks.map((check) => ({
        url: check.url,
        outcome: check.outcome,
        failures: check.failures,
      })),
      regression: report.regression,
      gate: report.gate ?? null,
    })),
  };
}

/**
 * The train's next state for one event at `now`: deterministic, and replay-safe (an event that
 * does not fit the current phase, such as the same event applied twice, changes nothing). Step
 * n+1 is promoted only once step n was checked without a halting outcome, its service's gate
 * passed and its promotion proposal has its approvals (DESIGN.md invariant 9); a gate that does
 * not pass or a rejection ends the train with nothing pushed. A halting outcome fails the guard
 * of the failing services (their gates block) and ends the train with a revert of the one
 * failing service's step, or manual triage when ambiguous.
 */
export function decideTrain(state: TrainState, event: TrainEvent, now: string): TrainDecision {
  switch (event.type) {
    case "gate-answered":
      return onGateAnswered(state, event, now);
    case "approval-answered":
      return onApprovalAnswered(state, event, now);
    case "promotion-approved":
      return onPromotionApproved(state, event);
    case "promotion-rejected":
      return onPromotionRejected(state, event, now);
    case "step-promoted":
    case "step-in-place": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "promoting") {
        return ignore(state, `step ${event.step} is not promoting`);
      }
      const planned = plannedStep(state.plan, event.step);
      const commit = event.type === "step-promoted" ? event.commit : null;
      const inPlace = event.type === "step-in-place" ? event.reason : null;
      const promoted = stepEvent(state, event.step, "promoted", now, {
        commit,
        ...(inPlace === null ? {} : { details: { inPlace } }),
      });
      const recorded = withStep(state, event.step, { commit, inPlace });
      const deployedWhen = planned.deployedWhen ?? null;
      // A dry run pushes nothing, so nothing ever goes live: it does not wait.
      if (deployedWhen === null || state.dryRun) {
        const landed = withStep(recorded, event.step, { promotedAt: now });
        return afterDeployed(landed, event.step, now, [promoted]);
      }
      return {
        state: withStep(recorded, event.step, {
          phase: "deploying",
          deployDeadline: addMs(now, deployedWhen.withinMs),
          nextProbeAt: null,
        }),
        changed: true,
        events: [promoted],
        actions: [
          {
            kind: "probe-deployed",
            step: event.step,
            service: planned.service,
            check: deployedWhen.check,
          },
        ],
      };
    }
    case "deploy-probe-due": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "deploying") {
        return ignore(state, `step ${event.step} is not deploying`);
      }
      if (step.nextProbeAt === null || step.nextProbeAt === undefined || now < step.nextProbeAt) {
        return ignore(state, `step ${event.step} has no probe due`);
      }
      const planned = plannedStep(state.plan, event.step);
      if (planned.deployedWhen === null || planned.deployedWhen === undefined) {
        return ignore(state, `step ${event.step} has no deployedWhen`);
      }
      return {
        state: withStep(state, event.step, { nextProbeAt: null }),
        changed: true,
        events: [],
        actions: [
          {
            kind: "probe-deployed",
            step: event.step,
            service: planned.service,
            check: planned.deployedWhen.check,
          },
        ],
      };
    }
    case "deploy-probed": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "deploying") {
        return ignore(state, `step ${event.step} is not deploying`);
      }
      const probe = event.result;
      if (probe.outcome === "ok") {
        const live = withStep(state, event.step, {
          promotedAt: now,
          nextProbeAt: null,
          deployProbe: probe,
        });
        const deployed = stepEvent(live, event.step, "deployed", now, {
          commit: step.commit,
          details: { probe: probe.url },
        });
        return afterDeployed(live, event.step, now, [deployed]);
      }
      const planned = plannedStep(state.plan, event.step);
      const why = probe.failures.map((f) => f.message).join("; ") || `outcome ${probe.outcome}`;
      if (step.deployDeadline !== null && step.deployDeadline !== undefined) {
        if (now >= step.deployDeadline) {
          const failure = `not deployed within ${planned.deployedWhen?.within ?? "its deadline"}: GET ${probe.url}: ${why}`;
          const failed = withStep(state, event.step, {
            phase: "failed",
            failure,
            nextProbeAt: null,
            deployProbe: probe,
          });
          return haltAtStep(failed, event.step, failure, now);
        }
      }
      const failed = (step.deployProbesFailed ?? 0) + 1;
      return {
        state: withStep(state, event.step, {
          nextProbeAt: addMs(now, deployProbeDelayMs(failed)),
          deployProbe: probe,
          deployProbesFailed: failed,
        }),
        changed: true,
        events: [],
        actions: [],
      };
    }
    case "hook-reported": {
      const step = state.steps[event.step];
      if (step === undefined) return ignore(state, `train has no step ${event.step}`);
      const earlier = hooksOf(step).find((h) => h.hook === event.hook);
      if (earlier !== undefined && earlier.outcome !== "requested") {
        return ignore(state, `the ${event.hook} hook of step ${event.step} was already reported`);
      }
      const planned = plannedStep(state.plan, event.step);
      const spec = plannedHook(planned.strategy, event.hook);
      if (spec === null) return ignore(state, `step ${event.step} has no ${event.hook} hook`);
      const manifest = "manifest" in spec ? spec.manifest : null;
      if (manifest !== null && earlier === undefined) {
        return ignore(state, `the ${event.hook} hook of step ${event.step} was not requested`);
      }
      const record: HookRecord = {
        hook: event.hook,
        kind: manifest === null ? "http" : "manifest",
        target: "http" in spec ? spec.http.url : spec.manifest.path,
        // A dry run's manifest hook only computed its diff.
        outcome: !event.ok ? "failed" : state.dryRun ? "skipped" : "ok",
        status: event.status,
        detail: event.detail,
        at: now,
        ...(event.change === undefined ? {} : { change: event.change }),
      };
      if (event.hook === "rollback") {
        // Called beside a revert proposal, after the train stopped: recorded, nothing more.
        if (state.status === "running") return ignore(state, "the train did not halt");
        return {
          state: withHook(state, event.step, record),
          changed: true,
          events: [],
          actions: [],
        };
      }
      if (state.status !== "running" || step.phase !== "hooking") {
        return ignore(state, `step ${event.step} is not calling its ${event.hook} hook`);
      }
      const hooked = withHook(state, event.step, record);
      if (event.ok) return startGuard(hooked, event.step, now, []);
      const failure =
        "http" in spec
          ? `${event.hook} hook ${spec.http.method} ${spec.http.url} failed: ${event.detail}`
          : `${event.hook} hook (a patch of ${spec.manifest.path}) failed: ${event.detail}`;
      const failed = withStep(hooked, event.step, { phase: "failed", failure });
      return haltAtStep(failed, event.step, failure, now);
    }
    case "step-failed": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "promoting") {
        return ignore(state, `step ${event.step} is not promoting`);
      }
      const next = withStep(state, event.step, { phase: "failed", failure: event.reason });
      const reason = `step ${event.step + 1} (${step.service}) could not be promoted: ${event.reason}`;
      const halted: TrainState = {
        ...next,
        status: "halted",
        finishedAt: now,
        reason,
        attribution: { kind: "none" },
      };
      // Nothing landed, so there is nothing to revert.
      return {
        state: halted,
        changed: true,
        events: [finishedEvent(halted, "halted", reason, now)],
        actions: [],
      };
    }
    case "guard-elapsed": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "guarding") {
        return ignore(state, `step ${event.step} is not guarding`);
      }
      if (step.guardUntil !== null && Date.parse(now) < Date.parse(step.guardUntil)) {
        return ignore(state, `step ${event.step} guards until ${step.guardUntil}`);
      }
      const next = withStep(state, event.step, { phase: "checking" });
      return {
        state: next,
        changed: true,
        events: [],
        actions: [
          { kind: "run-checks", step: event.step, targets: checkTargets(next, event.step) },
        ],
      };
    }
    case "checks-reported": {
      const step = state.steps[event.step];
      if (state.status !== "running" || step?.phase !== "checking") {
        return ignore(state, `step ${event.step} is not checking`);
      }
      if (!event.reports.some((report) => report.step === event.step)) {
        return ignore(state, `no report for step ${event.step}`);
      }
      const reports = event.reports.filter((report) => report.step <= event.step);
      const outcome = worstOutcome(
        reports.map((report) => reportFailure(report, state.haltOn).outcome),
      );
      const attribution = attributeFailure({ reports, haltOn: state.haltOn });
      const next = withStep(state, event.step, { phase: "checked", checkedAt: now, outcome });
      const checked = stepEvent(next, event.step, "checked", now, {
        commit: step.commit,
        outcome,
        details: summary(reports),
      });
      if (attribution.kind !== "none") {
        const reason =
          attribution.kind === "step"
            ? `step ${event.step + 1} guard failed: step ${attribution.step + 1} (${attribution.service}) is failing`
            : `step ${event.step + 1} guard failed and the failing service is ambiguous`;
        return halt(next, attribution, reason, now, [checked]);
      }
      const following = event.step + 1;
      if (following < state.steps.length) {
        const gating = askGate(next, following);
        return { state: gating.state, changed: true, events: [checked], actions: [gating.action] };
      }
      if (state.plan.finalChecks.length === 0) {
        return complete({ ...next, final: { phase: "checked", outcome: "ok" } }, now, [checked]);
      }
      const checking: TrainState = { ...next, final: { phase: "checking", outcome: null } };
      return {
        state: checking,
        changed: true,
        events: [checked],
        actions: [
          {
            kind: "run-final-checks",
            checks: state.plan.finalChecks,
            targets: checkTargets(checking, state.steps.length - 1),
          },
        ],
      };
    }
    case "final-checks-reported": {
      if (state.status !== "running" || state.final.phase !== "checking") {
        return ignore(state, "final checks are not running");
      }
      const outcome = worstOutcome([
        ...event.checks.map((check) => check.outcome),
        ...event.reports.map((report) => reportFailure(report, state.haltOn).outcome),
      ]);
      const next: TrainState = { ...state, final: { phase: "checked", outcome } };
      const attribution = attributeFailure({
        reports: event.reports,
        stackChecks: event.checks,
        haltOn: state.haltOn,
      });
      if (attribution.kind !== "none") {
        const reason =
          attribution.kind === "step"
            ? `final checks failed: step ${attribution.step + 1} (${attribution.service}) is failing`
            : "final checks failed and the failing service is ambiguous";
        return halt(next, attribution, reason, now, []);
      }
      return complete(next, now, []);
    }
    case "follow-up-due": {
      const followUp = state.followUps[event.index];
      if (followUp?.phase !== "scheduled") {
        return ignore(state, `follow-up ${event.index} is not scheduled`);
      }
      if (Date.parse(now) < Date.parse(followUp.dueAt)) {
        return ignore(state, `follow-up ${event.index} is due at ${followUp.dueAt}`);
      }
      const next: TrainState = {
        ...state,
        followUps: state.followUps.map((item) =>
          item.index === event.index ? { ...item, phase: "running" } : item,
        ),
      };
      return {
        state: next,
        changed: true,
        events: [],
        actions: [
          {
            kind: "run-follow-up",
            index: event.index,
            checks: state.plan.finalChecks,
            targets: checkTargets(next, state.steps.length - 1),
          },
        ],
      };
    }
    case "follow-up-reported": {
      const followUp = state.followUps[event.index];
      if (followUp?.phase !== "running") {
        return ignore(state, `follow-up ${event.index} is not running`);
      }
      const attribution = attributeFailure({
        reports: event.reports,
        stackChecks: event.checks,
        haltOn: state.haltOn,
      });
      const failed = attribution.kind !== "none";
      const updated: FollowUpState = {
        ...followUp,
        phase: failed ? "failed" : "passed",
        at: now,
        attribution,
      };
      const next: TrainState = {
        ...state,
        followUps: state.followUps.map((item) => (item.index === event.index ? updated : item)),
      };
      const details = { ...summary(event.reports), stack: event.checks, attribution };
      const published = followUpEvent(
        next,
        updated,
        updated.phase === "failed" ? "failed" : "passed",
        now,
        details,
      );
      if (!failed) return { state: next, changed: true, events: [published], actions: [] };
      const reason =
        attribution.kind === "step"
          ? `follow-up +${followUp.after} failed: step ${attribution.step + 1} (${attribution.service}) is failing`
          : `follow-up +${followUp.after} failed and the failing service is ambiguous`;
      const remedied = remedy(next, attribution, reason, now);
      return {
        state: remedied.state,
        changed: true,
        events: [published],
        actions: [...guardFailures(next, attribution, reason, now), ...remedied.actions],
      };
    }
  }
}

/** One promoted service in a release manifest. */
export interface ManifestEntry {
  readonly step: number;
  readonly service: string;
  readonly change: PlannedChange;
  readonly commit: string | null;
  /** The recorded deploy time. */
  readonly promotedAt: string;
  readonly checkedAt: string | null;
  readonly outcome: CheckOutcome | null;
  /** The strategy hooks called (or recorded) for this step. */
  readonly hooks: readonly HookRecord[];
}

/** The release manifest (JSON): which service was promoted to what, when, with which commit. */
export interface ReleaseManifest {
  readonly trainId: string;
  readonly train: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly status: TrainStatus;
  readonly reason: string | null;
  readonly promoted: readonly ManifestEntry[];
  readonly followUps: readonly {
    readonly after: string;
    readonly dueAt: string;
    readonly phase: FollowUpPhase;
    readonly attributedStep: number | null;
  }[];
}

/** The release manifest of a train, from its state: the steps that landed, in order. */
export function releaseManifest(state: TrainState): ReleaseManifest {
  return {
    trainId: state.trainId,
    train: state.plan.train,
    dryRun: state.dryRun,
    startedAt: state.startedAt,
    finishedAt: state.finishedAt,
    status: state.status,
    reason: state.reason,
    promoted: state.steps.flatMap((step) =>
      step.promotedAt === null
        ? []
        : [
            {
              step: step.index,
              service: step.service,
              change: plannedStep(state.plan, step.index).change,
              commit: step.commit,
              promotedAt: step.promotedAt,
              checkedAt: step.checkedAt,
              outcome: step.outcome,
              hooks: hooksOf(step),
            },
          ],
    ),
    followUps: state.followUps.map((followUp) => ({
      after: followUp.after,
      dueAt: followUp.dueAt,
      phase: followUp.phase,
      attributedStep: followUp.attribution?.kind === "step" ? followUp.attribution.step : null,
    })),
  };
}
