/**
 * What is due for a train now: what the service heard since the last decision (the git
 * actuator's reports, people's decisions on a promotion), or a timer whose time came (a deploy
 * probe, a guard window, a follow-up), as the next event for `decideTrain` with its time. Never
 * before its due time.
 */
import { hookIdempotencyKey } from "./ids.js";
import type { HookName } from "./ids.js";
import type { TrainEvent } from "./protocol.js";
import type { StepState, TrainState } from "./types.js";

/** What the git actuator reported for a step's promotion or manifest hook. */
export type ActuatorReport =
  | {
      readonly kind: "completed";
      readonly at: string;
      readonly branch: string;
      readonly commit: string;
      readonly prUrl: string | null;
      readonly diff: string;
      readonly dryRun: boolean;
    }
  | {
      readonly kind: "failed";
      readonly at: string;
      readonly reason: string;
      /** The repo already was as asked: nothing was committed. */
      readonly unchanged?: boolean | undefined;
    };

/** A person's decision on a step's promotion proposal; `approved`: the approvals are complete. */
export type PromotionDecision =
  | {
      readonly kind: "approved";
      readonly by: string;
      readonly at: string;
      readonly reason: string;
      readonly required: number;
      readonly approved: boolean;
    }
  | {
      readonly kind: "rejected";
      readonly by: string;
      readonly at: string;
      readonly reason: string;
    };

/** A train's state and what the service heard for it, not yet fed to the state machine. */
export interface TrainInbox {
  readonly state: TrainState;
  /** Per step index (as a string): the actuator's report of its promotion. */
  readonly promotions: Readonly<Record<string, ActuatorReport>>;
  /** Per manifest hook action id (`<trainId>-s<n>-<hook>`): the actuator's report of it. */
  readonly hookOutcomes: Readonly<Record<string, ActuatorReport>>;
  /** Per step index: people's decisions on its promotion proposal, in the order heard. */
  readonly decisions: Readonly<Record<string, readonly PromotionDecision[]>>;
}

/** The next event for the state machine, and the time it happened. */
export interface DueEvent {
  readonly event: TrainEvent;
  readonly at: string;
}

/**
 * The next event for a train at `now`, or null: a requested manifest hook's report first, then
 * per step what its phase waits for, then a follow-up whose time came. A dry run does not wait
 * out its guard windows (it fires them at their end), and has no follow-ups.
 */
export function dueTrainEvent(inbox: TrainInbox, now: string): DueEvent | null {
  const hook = reportedHook(inbox, now);
  if (hook !== null) return hook;
  for (const step of inbox.state.steps) {
    const due = stepDue(inbox, step, now);
    if (due !== null) return due;
  }
  return inbox.state.dryRun ? null : followUpDue(inbox.state, now);
}

/** A manifest hook whose outcome is still `requested` and whose report came in. */
function reportedHook(inbox: TrainInbox, now: string): DueEvent | null {
  for (const step of inbox.state.steps) {
    for (const hook of step.hooks ?? []) {
      if (hook.outcome !== "requested") continue;
      const key = hookIdempotencyKey(inbox.state.trainId, step.index, hook.hook);
      const outcome = inbox.hookOutcomes[key];
      if (outcome !== undefined)
        return { event: hookReport(step.index, hook.hook, outcome), at: now };
    }
  }
  return null;
}

/** What one step's phase waits for, when it came. */
function stepDue(inbox: TrainInbox, step: StepState, now: string): DueEvent | null {
  switch (step.phase) {
    case "promoting":
      return promotionDue(inbox.promotions[String(step.index)], step, now);
    case "awaiting-approval": {
      const event = decisionEvent(step, inbox.decisions[String(step.index)] ?? []);
      return event === null ? null : { event, at: now };
    }
    case "deploying": {
      const probeAt = step.nextProbeAt ?? null;
      if (probeAt === null || probeAt > now) return null;
      return { event: { type: "deploy-probe-due", step: step.index }, at: now };
    }
    case "guarding":
      return guardDue(inbox.state, step, now);
    default:
      return null;
  }
}

/**
 * A promotion the actuator reported: committed (its deploy time is the actuator's, never before
 * the request), already in place (checked like a promotion, nothing to revert), or failed.
 */
function promotionDue(
  outcome: ActuatorReport | undefined,
  step: StepState,
  now: string,
): DueEvent | null {
  if (outcome === undefined) return null;
  if (outcome.kind === "completed") {
    const at = outcome.at < (step.promotingAt ?? outcome.at) ? now : outcome.at;
    return { event: { type: "step-promoted", step: step.index, commit: outcome.commit }, at };
  }
  const event: TrainEvent =
    outcome.unchanged === true
      ? { type: "step-in-place", step: step.index, reason: outcome.reason }
      : { type: "step-failed", step: step.index, reason: outcome.reason };
  return { event, at: now };
}

/** A guard window that ended; a dry run's ends at once, at its end time. */
function guardDue(state: TrainState, step: StepState, now: string): DueEvent | null {
  if (step.guardUntil === null) return null;
  const event: TrainEvent = { type: "guard-elapsed", step: step.index };
  if (state.dryRun) return { event, at: step.guardUntil };
  return step.guardUntil <= now ? { event, at: now } : null;
}

/** The first scheduled follow-up whose time came. */
function followUpDue(state: TrainState, now: string): DueEvent | null {
  const due = state.followUps.find((f) => f.phase === "scheduled" && f.dueAt <= now);
  return due === undefined ? null : { event: { type: "follow-up-due", index: due.index }, at: now };
}

/**
 * A manifest hook's `hook-reported`, from what the git actuator reported: a patch already in
 * place did what the hook asks (nothing to commit is not a failure).
 */
export function hookReport(step: number, hook: HookName, outcome: ActuatorReport): TrainEvent {
  const reported = { type: "hook-reported" as const, step, hook, status: null };
  if (outcome.kind === "failed") {
    return outcome.unchanged === true
      ? { ...reported, ok: true, detail: `already in place: ${outcome.reason}` }
      : { ...reported, ok: false, detail: outcome.reason };
  }
  const { branch, commit, prUrl, diff } = outcome;
  const where = `${commit.slice(0, 12)} on ${branch}${prUrl === null ? "" : ` (${prUrl})`}`;
  return {
    ...reported,
    ok: true,
    detail: outcome.dryRun
      ? `dry run: would commit ${where}; nothing pushed`
      : `committed ${where}`,
    change: { branch, commit, prUrl, diff },
  };
}

/**
 * The next decision people made on a step's promotion proposal that the step has not taken in
 * yet: a rejection first, then the approval that completed it, then any approval by someone not
 * counted yet; null when there is none.
 */
export function decisionEvent(
  step: StepState,
  decisions: readonly PromotionDecision[],
): TrainEvent | null {
  const rejected = decisions.find((d) => d.kind === "rejected");
  if (rejected !== undefined) {
    const { by, reason } = rejected;
    return { type: "promotion-rejected", step: step.index, by, reason };
  }
  const counted = new Set((step.approval?.approvals ?? []).map((a) => a.by));
  const approvals = decisions.filter(
    (d): d is Extract<PromotionDecision, { kind: "approved" }> => d.kind === "approved",
  );
  const next = approvals.find((d) => d.approved) ?? approvals.find((d) => !counted.has(d.by));
  if (next === undefined) return null;
  const { by, at, required, approved } = next;
  return { type: "promotion-approved", step: step.index, by, at, required, approved };
}

/** A train's state and the work the service still holds for it (events to publish, actions). */
export interface TrainBacklog {
  readonly state: TrainState;
  readonly outbox: readonly unknown[];
  readonly pending: readonly unknown[];
}

/**
 * Whether a train still has work: running, an event to publish or an action to do, a manifest
 * hook (a canary's rollback after a halt) whose outcome is still to come, or a follow-up to come
 * (a dry run has none).
 */
export function isTrainActive(backlog: TrainBacklog): boolean {
  const { state } = backlog;
  return (
    state.status === "running" ||
    backlog.outbox.length > 0 ||
    backlog.pending.length > 0 ||
    state.steps.some((step) => (step.hooks ?? []).some((h) => h.outcome === "requested")) ||
    (!state.dryRun && state.followUps.some((f) => f.phase === "scheduled" || f.phase === "running"))
  );
}
