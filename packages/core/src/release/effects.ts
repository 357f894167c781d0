/**
 * What the service does for a decided {@link TrainAction}, with every choice made here: what a
 * dry run skips, what a retry after a crash must not do again, what the git actuator is asked
 * (an approved action, or a preview in a dry run) and what the policy and proposal services are
 * told. The service maps each {@link TrainEffect} to one adapter and decides nothing.
 */
import { promotionProposalId } from "./ids.js";
import type { HookName } from "./ids.js";
import { promotionPlan } from "./promote.js";
import type { PromotionPlan, TrainAction } from "./protocol.js";
import { hooksOf } from "./state.js";
import type { TrainState } from "./types.js";

/** How much of a reason and of each evidence line `guard.fail` carries (its schema's limits). */
export const GUARD_REASON_CHARS = 2_000;
export const GUARD_EVIDENCE_LINES = 100;

/** A change asked of the git actuator: `preview-requested` in a dry run, else `action-requested`. */
export interface ChangeRequest {
  readonly kind: "request-change";
  readonly type: "governance.preview-requested" | "governance.action-requested";
  readonly proposalId: string;
  readonly service: string;
  readonly requestedAt: string;
  readonly plan: PromotionPlan;
}

/** One effect to do, fully decided; each comes back (when it answers) as a `TrainEvent`. */
export type TrainEffect =
  | ChangeRequest
  | Extract<
      TrainAction,
      {
        kind:
          | "ask-gate"
          | "request-approval"
          | "probe-deployed"
          | "run-checks"
          | "run-final-checks"
          | "run-follow-up"
          | "manual-triage"
          | "call-hook";
      }
    >
  | {
      readonly kind: "fail-guard";
      readonly step: number;
      readonly service: string;
      readonly train: string;
      readonly trainId: string;
      readonly reason: string;
      readonly evidence: readonly string[];
      readonly at: string;
    }
  | {
      readonly kind: "propose-revert";
      readonly step: number;
      readonly service: string;
      readonly path: string;
      readonly commit: string | null;
      /** Names the train and step, so asking again finds the same proposal. */
      readonly causeId: string;
      readonly reason: string;
    };

const clip = (text: string, chars: number) =>
  text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;

function changeRequest(
  state: TrainState,
  change: Omit<ChangeRequest, "kind" | "type">,
): ChangeRequest {
  const type = state.dryRun ? "governance.preview-requested" : "governance.action-requested";
  return { kind: "request-change", type, ...change };
}

/**
 * Why the train halted and what this service failed (its own checks, two lines at most), within
 * `guard.fail`'s limits; the gate's message names the train and step already.
 */
function failGuard(
  state: TrainState,
  action: Extract<TrainAction, { kind: "fail-guard" }>,
): TrainEffect {
  const own = action.evidence
    .filter((line) => line.startsWith(`step ${action.step + 1} ${action.service}:`))
    .slice(0, 2);
  return {
    kind: "fail-guard",
    step: action.step,
    service: action.service,
    train: state.plan.train,
    trainId: state.trainId,
    reason: clip([action.reason, ...own].join(" — "), GUARD_REASON_CHARS),
    evidence: action.evidence
      .slice(0, GUARD_EVIDENCE_LINES)
      .map((line) => clip(line, GUARD_REASON_CHARS)),
    at: action.at,
  };
}

function proposeRevert(
  state: TrainState,
  action: Extract<TrainAction, { kind: "propose-revert" }>,
): TrainEffect {
  const { step, service, path, commit } = action;
  return {
    kind: "propose-revert",
    step,
    service,
    path,
    commit,
    causeId: `${state.trainId}:step-${step + 1}`,
    reason: `release train ${state.plan.train}, step ${step + 1}: ${action.reason}`,
  };
}

/** A hook whose outcome is recorded is never called or applied again. */
function hookRecorded(state: TrainState, step: number, hook: HookName): boolean {
  return hooksOf(state.steps[step]).some((h) => h.hook === hook);
}

/**
 * The effect of one decided action in `state` (the train's state now, which may be past the
 * decision after a crash), or null when there is nothing to do: a timer (`wait`,
 * `schedule-follow-up`: its due time is in the state), what a dry run never does (a proposal, a
 * failed guard, a revert, an http hook call), an http hook whose outcome is recorded (a retry
 * after a crash before the record was saved calls again, with the same Idempotency-Key), or a
 * manifest hook no longer `requested`.
 */
export function effectOf(state: TrainState, action: TrainAction, now: string): TrainEffect | null {
  switch (action.kind) {
    case "wait":
    case "schedule-follow-up":
      return null;
    case "promote":
      return changeRequest(state, {
        proposalId: promotionProposalId(state.trainId, action.step),
        service: action.service,
        requestedAt: state.steps[action.step]?.promotingAt ?? now,
        plan: promotionPlan(action.change),
      });
    case "apply-manifest-hook": {
      const requested = hooksOf(state.steps[action.step]).find((h) => h.hook === action.hook);
      if (requested?.outcome !== "requested") return null;
      const { path, patch, hook } = action;
      return changeRequest(state, {
        proposalId: action.actionId,
        service: action.service,
        requestedAt: requested.at,
        plan: { action: "patch-manifest", path, patch, hook },
      });
    }
    case "request-approval":
      return state.dryRun ? null : action;
    case "fail-guard":
      return state.dryRun ? null : failGuard(state, action);
    case "propose-revert":
      return state.dryRun ? null : proposeRevert(state, action);
    case "call-hook":
      return state.dryRun || hookRecorded(state, action.step, action.hook) ? null : action;
    default:
      return action;
  }
}
