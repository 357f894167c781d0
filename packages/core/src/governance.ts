import type { GateReason, GateVerdictKind, Severity } from "@safedeploy/schema";
import { UNKNOWN_REASON_CODES } from "./gate.js";
import { freezeId } from "./ids.js";

/** A verdict as the policy service keeps and publishes it. */
export interface RecordedVerdict {
  readonly allowed: boolean;
  /** Absent in records kept before the gate was three-valued. */
  readonly verdict?: GateVerdictKind | undefined;
  readonly reasons: readonly GateReason[];
}

/** Two verdicts are the same when they say the same and give the same reason codes. */
export function sameVerdict(a: RecordedVerdict | null, b: RecordedVerdict | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.allowed === b.allowed &&
    (a.verdict ?? null) === (b.verdict ?? null) &&
    a.reasons.length === b.reasons.length &&
    a.reasons.every((reason, i) => reason.code === b.reasons[i]?.code)
  );
}

/**
 * Whether a freshly judged verdict is published: only when it changed, and never for a moment
 * before the last one published (an evaluation arriving after a freeze was lifted, say, must not
 * make it go back). A restatement at start does not wait for that moment.
 */
export function decideVerdict(input: {
  readonly previous: RecordedVerdict | null;
  /** When the last published verdict was judged; absent in older records. */
  readonly previousAt: string | undefined;
  readonly next: RecordedVerdict;
  readonly at: string;
  readonly restatement: boolean;
}): { readonly publish: boolean; readonly verdictAt: string | undefined } {
  const changed = !sameVerdict(input.next, input.previous);
  const behind =
    !input.restatement && input.previousAt !== undefined && input.at < input.previousAt;
  const publish = changed && !behind;
  return {
    publish,
    verdictAt: publish && !input.restatement ? input.at : input.previousAt,
  };
}

/**
 * The reasons of a blocked verdict a person is asked to act on (a block-promotion proposal): not
 * what the gate cannot see (no data, failed queries, stale evidence: no one's decision), nor a
 * failed release guard (its train already proposed the revert).
 */
export function actionableReasons(reasons: readonly GateReason[]): GateReason[] {
  return reasons.filter(
    (reason) =>
      !UNKNOWN_REASON_CODES.includes(reason.code) && reason.code !== "release-guard-failed",
  );
}

/** The severities a rollback answers: a burn, or a spent budget. A policy incident alone: none. */
export function rollbackAnswers(severity: Severity): boolean {
  return severity === "slow-burn" || severity === "fast-burn" || severity === "exhausted";
}

/** A manual freeze window, or why it cannot be one (naming the field). */
export type FreezeDecision =
  | {
      readonly ok: true;
      readonly freeze: {
        readonly id: string;
        readonly from: string;
        readonly until: string;
        readonly reason: string;
        readonly origin: "manual";
        readonly actor: string;
      };
    }
  | { readonly ok: false; readonly field: string; readonly message: string };

/** A person's freeze of a service from `from` (default now) until `until`, which must be later. */
export function decideFreeze(request: {
  readonly service: string;
  readonly from?: string | undefined;
  readonly until: string;
  readonly reason: string;
  readonly actor: string;
  readonly now: string;
}): FreezeDecision {
  const from = request.from ?? request.now;
  if (Date.parse(request.until) <= Date.parse(from)) {
    return { ok: false, field: "until", message: "must be after from" };
  }
  return {
    ok: true,
    freeze: {
      id: freezeId(request.service, "manual", from),
      from,
      until: request.until,
      reason: request.reason,
      origin: "manual",
      actor: request.actor,
    },
  };
}
