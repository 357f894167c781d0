import type {
  EventData,
  GateReason,
  PolicySpec,
  ServiceDocument,
  Severity,
} from "@safedeploy/schema";

/** The latest evaluation of one SLO, as the policy service keeps it. */
export interface SloStatus {
  readonly slo: string;
  readonly severity: Severity;
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
  readonly origin: "manual" | "exhaustion";
}

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
  };
  readonly slos: readonly SloStatus[];
  readonly freezes: readonly FreezeWindow[];
  readonly now: string;
}

/**
 * What the gate takes from a service's declaration and its policy. One function for the policy
 * service and for replay, so a replay judges exactly as the live gate did.
 */
export function gateDeclaration(
  spec: ServiceDocument["spec"],
  policy: PolicySpec,
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
    },
  };
}

/**
 * The SLO states with one budget evaluation folded in, or undefined when it is not newer than
 * what is known for its SLO (a redelivery, or an older evaluation arriving late).
 */
export function withEvaluation(
  slos: Readonly<Record<string, SloStatus>>,
  evaluation: EventData<"budget.evaluated">,
): Record<string, SloStatus> | undefined {
  const known = slos[evaluation.slo];
  if (known !== undefined && known.evaluatedAt >= evaluation.evaluatedAt) return undefined;
  return {
    ...slos,
    [evaluation.slo]: {
      slo: evaluation.slo,
      severity: evaluation.severity,
      budgetRemaining: evaluation.budgetRemaining,
      burnRates: evaluation.burnRates.map((b) => ({ window: b.window, burnRate: b.burnRate })),
      evaluatedAt: evaluation.evaluatedAt,
    },
  };
}

export interface GateVerdict {
  readonly allowed: boolean;
  readonly reasons: GateReason[];
}

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

function sloReasons(input: GateInput, name: string): GateReason[] {
  const status = input.slos.find((s) => s.slo === name);
  const { policy, service } = input;
  if (status === undefined || status.severity === "no-data" || status.severity === "unknown") {
    if (policy.noData === "allow") return [];
    const code = status?.severity === "unknown" ? "unknown" : "no-data";
    const why =
      status === undefined
        ? "has not been evaluated yet"
        : code === "unknown"
          ? "could not be measured (a query failed)"
          : "has too little traffic to judge";
    return [
      {
        code,
        message: `SLO ${name} ${why}; the policy blocks on ${code}`,
        value: null,
        threshold: null,
      },
    ];
  }
  const reasons: GateReason[] = [];
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

/**
 * May the service be promoted now? Blocked by a structural violation (no SLO, no rollback, no
 * canary where required), an exhausted budget, a burn above `maxPromotionBurnRate`, budget below
 * the safety margin, no-data or unknown (unless the policy allows them), or an active freeze.
 * Every reason names what was measured against which threshold.
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
  ];
  return { allowed: reasons.length === 0, reasons };
}

/** The freeze an exhausted budget opens: from the evaluation, for `freezeOnExhaustionMs`. */
export function exhaustionFreeze(
  service: string,
  evaluatedAt: string,
  freezeOnExhaustionMs: number,
): FreezeWindow {
  return {
    id: `freeze:${service}:exhaustion:${evaluatedAt}`,
    from: evaluatedAt,
    until: new Date(Date.parse(evaluatedAt) + freezeOnExhaustionMs).toISOString(),
    reason: "error budget exhausted",
    origin: "exhaustion",
  };
}
