import { formatDuration } from "@safedeploy/schema";
import { freezeId } from "./ids.js";
import type {
  Burn,
  EvaluatedSlo,
  GateReason,
  GateVerdictKind,
  PolicySpec,
  ServiceDocument,
  Severity,
  VerdictEvidence,
} from "@safedeploy/schema";

/** The latest evaluation of one SLO, as the policy service keeps it. */
export interface SloStatus {
  readonly slo: string;
  readonly severity: Severity;
  /** Absent in states kept before burn and budget were apart. */
  readonly burn?: Burn | undefined;
  readonly budgetRemaining: number | null;
  readonly burnRates: readonly { readonly window: string; readonly burnRate: number | null }[];
  readonly evaluatedAt: string;
}

/** A freeze window: promotions of the service are blocked from `from` until `until`. */
export interface FreezeWindow {
  readonly id: string;
  readonly from: string;
  readonly until: string;
  readonly reason: string;
  /** `recurring`: a `kind: FreezeWindow` in force (see freeze-window.ts); never stored. */
  readonly origin: "manual" | "exhaustion" | "recurring";
}

/**
 * A release train's failed guard of a service: the gate blocks (`release-guard-failed`) from `at`
 * until it is cleared (its revert executed, or an approver cleared it).
 */
export interface ReleaseGuard {
  readonly id: string;
  readonly train: string;
  readonly trainId: string;
  /** Counted from 0; null for a failure of the train as a whole. */
  readonly step: number | null;
  readonly reason: string;
  readonly at: string;
  readonly clearedAt: string | null;
}

/** How far in the future evidence may be dated (clock skew between hosts) and still count. */
export const CLOCK_SKEW_MS = 10_000;

/** What the gate knows about a service: its declared shape, policy, SLO states and freezes. */
export interface GateInput {
  readonly service: {
    readonly sloNames: readonly string[];
    readonly rollbackPath: string | null;
    readonly strategy: "canary" | "blue_green" | "rolling" | null;
    readonly safetyMargin: number;
  };
  readonly policy: {
    readonly requireCanary: boolean;
    readonly maxPromotionBurnRate: number;
    readonly noData: "block" | "allow";
    /** The window promotion burn is judged on: the policy's first (fastest) long window. */
    readonly promotionBurnWindow: string;
    /** Evidence older than this is stale: never a pass ({@link staleAfterMs} in schema). */
    readonly staleAfterMs: number;
  };
  readonly slos: readonly SloStatus[];
  readonly freezes: readonly FreezeWindow[];
  /** Absent: none (callers that know of no guards). */
  readonly guards?: readonly ReleaseGuard[];
  readonly now: string;
}

/**
 * What the gate takes from a service's declaration and its policy. One function for the policy
 * service and for replay, so a replay judges exactly as the live gate did.
 */
export function gateDeclaration(
  spec: ServiceDocument["spec"],
  policy: PolicySpec,
  staleAfterMs: number,
): Pick<GateInput, "service" | "policy"> {
  return {
    service: {
      sloNames: spec.slos.map((slo) => slo.name),
      rollbackPath: spec.rollback?.path ?? null,
      strategy: spec.deployment?.strategy ?? null,
      safetyMargin: spec.promotion.safetyMargin,
    },
    policy: {
      requireCanary: policy.requireCanary,
      maxPromotionBurnRate: policy.maxPromotionBurnRate,
      noData: policy.noData,
      promotionBurnWindow: policy.burnRates[0]?.long ?? "1h",
      staleAfterMs,
    },
  };
}

/**
 * The SLO states with one budget evaluation folded in, or undefined when it is not newer than
 * what is known for its SLO (a redelivery, or an older evaluation arriving late).
 */
export function withEvaluation(
  slos: Readonly<Record<string, SloStatus>>,
  evaluation: EvaluatedSlo,
): Record<string, SloStatus> | undefined {
  const known = slos[evaluation.slo];
  if (known !== undefined && known.evaluatedAt >= evaluation.evaluatedAt) return undefined;
  return {
    ...slos,
    [evaluation.slo]: {
      slo: evaluation.slo,
      severity: evaluation.severity,
      burn: evaluation.burn,
      budgetRemaining: evaluation.budgetRemaining,
      burnRates: evaluation.burnRates.map((b) => ({ window: b.window, burnRate: b.burnRate })),
      evaluatedAt: evaluation.evaluatedAt,
    },
  };
}

/**
 * The SLO states with every SLO of a service's evaluation folded in, or undefined when none is
 * newer than what is known for it.
 */
export function withEvaluations(
  slos: Readonly<Record<string, SloStatus>>,
  evaluations: readonly EvaluatedSlo[],
): Record<string, SloStatus> | undefined {
  let folded: Record<string, SloStatus> | undefined;
  for (const evaluation of evaluations)
    folded = withEvaluation(folded ?? slos, evaluation) ?? folded;
  return folded;
}

export interface GateVerdict {
  /** True exactly when `verdict` is `pass`. */
  readonly allowed: boolean;
  readonly verdict: GateVerdictKind;
  readonly reasons: GateReason[];
  /** Seconds from the oldest SLO's newest evaluation to `now`; null when an SLO has none. */
  readonly evidenceAge: number | null;
  /** The newest evaluation of each SLO the verdict was judged on. */
  readonly evidence: VerdictEvidence[];
}

/**
 * Reasons that say the gate cannot see (no traffic, a failed query, stale or missing evidence):
 * alone they make the verdict `unknown`, never `pass`.
 */
export const UNKNOWN_REASON_CODES: readonly string[] = ["no-data", "unknown", "stale-evidence"];

const pct = (fraction: number) => `${Math.round(fraction * 1_000) / 10}%`;
const round = (value: number) => Math.round(value * 100) / 100;

function structuralReasons(input: GateInput): GateReason[] {
  const reasons: GateReason[] = [];
  const { service, policy } = input;
  if (service.sloNames.length === 0) {
    reasons.push({
      code: "no-slos",
      message: "the service declares no SLO",
      value: 0,
      threshold: 1,
    });
  }
  if (service.rollbackPath === null) {
    reasons.push({
      code: "no-rollback",
      message: "the service declares no rollback strategy and path",
      value: null,
      threshold: null,
    });
  }
  if (policy.requireCanary && service.strategy !== "canary") {
    reasons.push({
      code: "canary-required",
      message: `the policy requires a canary strategy; the service declares ${service.strategy ?? "none"}`,
      value: service.strategy,
      threshold: "canary",
    });
  }
  return reasons;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Why an SLO's evidence cannot be trusted at `now`: missing, too old, or dated in the future. */
function staleness(
  input: GateInput,
  name: string,
  status: SloStatus | undefined,
): GateReason | null {
  const { staleAfterMs } = input.policy;
  const threshold = seconds(staleAfterMs);
  const limit = `staleAfter ${formatDuration(staleAfterMs)}`;
  if (status === undefined) {
    return {
      code: "stale-evidence",
      message: `SLO ${name} has not been evaluated yet: no evidence; the policy blocks on stale evidence`,
      value: null,
      threshold,
    };
  }
  const ageMs = Date.parse(input.now) - Date.parse(status.evaluatedAt);
  if (ageMs > staleAfterMs) {
    return {
      code: "stale-evidence",
      message: `SLO ${name}: the newest evidence is ${seconds(ageMs)} s old > ${limit} (is the collector or Prometheus down?); the policy blocks on stale evidence`,
      value: seconds(ageMs),
      threshold,
    };
  }
  if (-ageMs > CLOCK_SKEW_MS) {
    return {
      code: "stale-evidence",
      message: `SLO ${name}: the newest evidence is dated ${seconds(-ageMs)} s in the future (clock skew?); the policy blocks on stale evidence`,
      value: seconds(ageMs),
      threshold,
    };
  }
  return null;
}

function sloReasons(input: GateInput, name: string): GateReason[] {
  const status = input.slos.find((s) => s.slo === name);
  const { policy, service } = input;
  const stale = staleness(input, name, status);
  const blind: GateReason[] = [];
  if (stale !== null) blind.push(stale);
  if (status !== undefined && (status.severity === "no-data" || status.severity === "unknown")) {
    const code = status.severity;
    const why =
      code === "unknown"
        ? "could not be measured (a query failed)"
        : "has too little traffic to judge";
    blind.push({
      code,
      message: `SLO ${name} ${why}; the policy blocks on ${code}`,
      value: null,
      threshold: null,
    });
  }
  // What the gate cannot see blocks unless the policy allows no-data; what it saw still counts.
  const reasons: GateReason[] = policy.noData === "allow" ? [] : blind;
  if (status === undefined) return reasons;
  const remaining = status.budgetRemaining;
  if (status.severity === "exhausted" || (remaining !== null && remaining <= 0)) {
    reasons.push({
      code: "budget-exhausted",
      message: `SLO ${name}: error budget exhausted (${pct(remaining ?? 0)} left)`,
      value: remaining,
      threshold: 0,
    });
  } else if (remaining !== null && remaining < service.safetyMargin) {
    reasons.push({
      code: "low-margin",
      message: `SLO ${name}: ${pct(remaining)} of the budget left < safety margin ${pct(service.safetyMargin)}`,
      value: remaining,
      threshold: service.safetyMargin,
    });
  }
  const burn =
    status.burnRates.find((b) => b.window === policy.promotionBurnWindow)?.burnRate ?? null;
  if (burn !== null && burn > policy.maxPromotionBurnRate) {
    reasons.push({
      code: "burn-rate-high",
      message: `SLO ${name}: burn ${round(burn)} > ${policy.maxPromotionBurnRate} over ${policy.promotionBurnWindow}`,
      value: burn,
      threshold: policy.maxPromotionBurnRate,
    });
  }
  return reasons;
}

/** Freeze windows in force at `now`. */
export function activeFreezes<F extends FreezeWindow>(freezes: readonly F[], now: string): F[] {
  const at = Date.parse(now);
  return freezes.filter((f) => Date.parse(f.from) <= at && at < Date.parse(f.until));
}

/** Guards not cleared at `now`. */
export function activeGuards<G extends ReleaseGuard>(guards: readonly G[], now: string): G[] {
  const at = Date.parse(now);
  return guards.filter(
    (g) => Date.parse(g.at) <= at && (g.clearedAt === null || at < Date.parse(g.clearedAt)),
  );
}

/** `pass` with no reason, `unknown` when every reason is one of not seeing, else `block`. */
export function verdictOf(reasons: readonly GateReason[]): GateVerdictKind {
  if (reasons.length === 0) return "pass";
  return reasons.every((r) => UNKNOWN_REASON_CODES.includes(r.code)) ? "unknown" : "block";
}

function evidenceOf(input: GateInput): Pick<GateVerdict, "evidence" | "evidenceAge"> {
  const known = input.service.sloNames
    .map((name) => input.slos.find((s) => s.slo === name))
    .filter((status): status is SloStatus => status !== undefined);
  const evidence = known.map((s) => ({ slo: s.slo, evaluatedAt: s.evaluatedAt }));
  if (known.length === 0 || known.length < input.service.sloNames.length) {
    return { evidence, evidenceAge: null };
  }
  const oldest = Math.min(...known.map((s) => Date.parse(s.evaluatedAt)));
  return { evidence, evidenceAge: seconds(Date.parse(input.now) - oldest) };
}

/**
 * May the service be promoted now? `block` on a structural violation (no SLO, no rollback, no
 * canary where required), an exhausted budget, a burn above `maxPromotionBurnRate`, budget below
 * the safety margin, an active freeze or a failed release guard; else `unknown` when the gate
 * cannot see (no-data, a failed query, evidence missing, older than `staleAfter` or dated in the
 * future; unless the policy allows no-data); else `pass`. Every reason names what was measured
 * against which threshold.
 */
export function gateVerdict(input: GateInput): GateVerdict {
  const reasons = [
    ...structuralReasons(input),
    ...input.service.sloNames.flatMap((name) => sloReasons(input, name)),
    ...activeFreezes(input.freezes, input.now).map((freeze): GateReason => ({
      code: "freeze-active",
      message: `${freeze.origin} freeze until ${freeze.until}: ${freeze.reason}`,
      value: freeze.id,
      threshold: freeze.until,
    })),
    ...activeGuards(input.guards ?? [], input.now).map((guard): GateReason => ({
      code: "release-guard-failed",
      message: `release train ${guard.train} (${guard.trainId})${guard.step === null ? "" : ` step ${guard.step + 1}`} failed its guard: ${guard.reason}; cleared when its revert is executed or an approver clears it`,
      value: guard.trainId,
      threshold: null,
    })),
  ];
  const verdict = verdictOf(reasons);
  return { allowed: verdict === "pass", verdict, reasons, ...evidenceOf(input) };
}

/** The freeze an exhausted budget opens: from the evaluation, for `freezeOnExhaustionMs`. */
export function exhaustionFreeze(
  service: string,
  evaluatedAt: string,
  freezeOnExhaustionMs: number,
): FreezeWindow & { readonly origin: "exhaustion" } {
  return {
    id: freezeId(service, "exhaustion", evaluatedAt),
    from: evaluatedAt,
    until: new Date(Date.parse(evaluatedAt) + freezeOnExhaustionMs).toISOString(),
    reason: "error budget exhausted",
    origin: "exhaustion",
  };
}

/**
 * What a service's evaluation does to its freezes: an SLO's spent budget opens an exhaustion
 * freeze of `freezeOnExhaustionMs` from the evaluation, unless one is in force then. `inForce` is the
 * exhaustion freeze that covers the evaluation (new or not); `freezes` the list to keep, or
 * undefined when nothing changes. One function for the policy service and replay.
 */
export function decideExhaustionFreeze<F extends FreezeWindow>(
  freezes: readonly F[],
  evaluation: {
    readonly service: string;
    readonly evaluatedAt: string;
    readonly slos: readonly { readonly severity: Severity }[];
  },
  freezeOnExhaustionMs: number,
  complete: (freeze: FreezeWindow & { readonly origin: "exhaustion" }) => F,
): { readonly freezes: F[] | undefined; readonly inForce: F | undefined } {
  if (!evaluation.slos.some((slo) => slo.severity === "exhausted")) {
    return { freezes: undefined, inForce: undefined };
  }
  const at = evaluation.evaluatedAt;
  const inForce = activeFreezes(freezes, at).find((f) => f.origin === "exhaustion");
  if (inForce !== undefined) return { freezes: undefined, inForce };
  const opened = complete(exhaustionFreeze(evaluation.service, at, freezeOnExhaustionMs));
  return { freezes: [...freezes, opened], inForce: opened };
}
