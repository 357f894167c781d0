import { parseDuration } from "@safedeploy/schema";
import type {
  HealthCheck,
  Hook,
  PatchPlan,
  ReleaseTrainDocument,
  ServiceDocument,
  TrainStep,
} from "@safedeploy/schema";

/** What a promotion of one service means, from its `deployment` (rolling when it has none). */
export type PromotionStrategy =
  | {
      readonly kind: "canary";
      /** The catalog's traffic weights, walked in order, each baked for `bakeTime`. */
      readonly stages: readonly { readonly weight: number; readonly bakeTime: string }[];
      readonly bakeTimeMs: number;
      readonly promoteHook: Hook | null;
      readonly rollbackHook: Hook | null;
    }
  | { readonly kind: "blue_green"; readonly cutoverHook: Hook | null }
  | { readonly kind: "rolling"; readonly maxUnavailable: number | string };

/** The change a step makes in the environment repo, aimed at the service's rollback path. */
export type PlannedChange =
  | { readonly kind: "image"; readonly image: string; readonly path: string }
  | {
      readonly kind: "patch";
      readonly patch: PatchPlan["patch"];
      readonly path: string;
    };

/** A regression rule as applied: the catalog's factor and the zero-baseline floor. */
export interface RegressionRule {
  /** Halt when the error ratio after exceeds this × the baseline ratio. */
  readonly maxErrorRatioIncrease: number;
  /**
   * The baseline ratio used when the measured one is lower (notably zero): without it, any
   * error after a clean baseline would be an infinite increase. Default
   * {@link DEFAULT_MIN_BASELINE_RATIO}.
   */
  readonly minBaselineRatio?: number;
}

/** One planned step: which service, how it is promoted, what changes, how it is guarded. */
export interface PlannedStep {
  readonly index: number;
  readonly service: string;
  readonly strategy: PromotionStrategy;
  readonly change: PlannedChange;
  /** One line naming the change, e.g. `image registry/x:v2 → envs/prod/x` (train-started). */
  readonly summary: string;
  readonly guardWindow: string;
  readonly guardWindowMs: number;
  readonly checks: readonly HealthCheck[];
  readonly regression: RegressionRule | null;
  /**
   * The probe that says the change is live, and for how long to poll it; null: the step is
   * deployed once its change is in Git (absent in plans saved before).
   */
  readonly deployedWhen?: PlannedDeployedWhen | null;
  /**
   * The distinct approvals the service's effective policy requires of a promotion
   * (`approvals.required`), when the services planned against carried it; null: not known here
   * (absent in plans saved before). Only a dry run reads it: a real run asks the proposal service.
   */
  readonly approvals?: number | null;
}

/** A step's `deployedWhen`: the probe (a fatal health check) and its deadline. */
export interface PlannedDeployedWhen {
  readonly check: HealthCheck;
  readonly within: string;
  readonly withinMs: number;
}

/** A follow-up look at the stack after the train finished. */
export interface PlannedFollowUp {
  readonly after: string;
  readonly afterMs: number;
}

/** The whole ordered plan of a train: what `release plan` prints and `release run` executes. */
export interface TrainPlan {
  readonly train: string;
  readonly steps: readonly PlannedStep[];
  readonly finalChecks: readonly HealthCheck[];
  readonly followUps: readonly PlannedFollowUp[];
}

/** Why a step cannot be planned. */
export interface PlanError {
  readonly step: number;
  readonly service: string;
  readonly code: "unknown-service" | "no-rollback-path";
  readonly message: string;
}

export type PlanResult =
  | { readonly ok: true; readonly plan: TrainPlan }
  | { readonly ok: false; readonly errors: readonly PlanError[] };

/** The part of a service's effective policy a plan reads. */
export interface PlanPolicy {
  readonly approvals: { readonly required: number };
}

/**
 * A service as planning needs it: a catalog document, or a loaded catalog service (`name`,
 * `spec` and its effective `policy`, as `@safedeploy/catalog` gives it).
 */
export type PlanService =
  | (Pick<ServiceDocument, "metadata" | "spec"> & { readonly policy?: PlanPolicy })
  | {
      readonly name: string;
      readonly spec: ServiceDocument["spec"];
      readonly policy?: PlanPolicy;
    };

function serviceName(service: PlanService): string {
  return "metadata" in service ? service.metadata.name : service.name;
}

/** The zero-baseline floor of a regression rule: 0.1% errors. */
export const DEFAULT_MIN_BASELINE_RATIO = 0.001;

function durationMs(text: string): number {
  // Catalog durations are validated by the schema; a bad one here is a caller bug.
  const ms = parseDuration(text);
  if (ms === undefined) throw new RangeError(`not a duration: ${text}`);
  return ms;
}

function strategyOf(service: PlanService): PromotionStrategy {
  const deployment = service.spec.deployment;
  if (deployment === undefined) return { kind: "rolling", maxUnavailable: "25%" };
  switch (deployment.strategy) {
    case "canary":
      return {
        kind: "canary",
        stages: deployment.canary.steps.map((weight) => ({
          weight,
          bakeTime: deployment.canary.bakeTime,
        })),
        bakeTimeMs: durationMs(deployment.canary.bakeTime),
        promoteHook: deployment.canary.promoteHook ?? null,
        rollbackHook: deployment.canary.rollbackHook ?? null,
      };
    case "blue_green":
      return { kind: "blue_green", cutoverHook: deployment.blueGreen.cutoverHook ?? null };
    case "rolling":
      return { kind: "rolling", maxUnavailable: deployment.rolling.maxUnavailable };
  }
}

function changeOf(step: TrainStep, path: string): PlannedChange {
  if (step.image !== undefined) return { kind: "image", image: step.image, path };
  return { kind: "patch", patch: step.patch ?? {}, path };
}

/** One line naming a change: `image REF → PATH` or `patch k1, k2 → PATH`. */
export function describeChange(change: PlannedChange): string {
  return change.kind === "image"
    ? `image ${change.image} → ${change.path}`
    : `patch ${Object.keys(change.patch).join(", ")} → ${change.path}`;
}

/**
 * Plans a release train against the catalog's services: per step the service's strategy, the
 * change aimed at its `rollback.path`, the guard window, checks and regression rule; then the
 * final checks and follow-ups. Every step that cannot be planned is reported, not only the first.
 */
export function planTrain(
  train: ReleaseTrainDocument,
  services: readonly PlanService[],
): PlanResult {
  const byName = new Map(services.map((service) => [serviceName(service), service]));
  const errors: PlanError[] = [];
  const steps: PlannedStep[] = [];
  train.spec.steps.forEach((step, index) => {
    const service = byName.get(step.service);
    if (service === undefined) {
      errors.push({
        step: index,
        service: step.service,
        code: "unknown-service",
        message: `step ${index + 1}: service "${step.service}" is not in the catalog`,
      });
      return;
    }
    const path = service.spec.rollback?.path;
    if (path === undefined) {
      errors.push({
        step: index,
        service: step.service,
        code: "no-rollback-path",
        message: `step ${index + 1}: service "${step.service}" has no rollback.path to change`,
      });
      return;
    }
    const change = changeOf(step, path);
    steps.push({
      index,
      service: step.service,
      strategy: strategyOf(service),
      change,
      summary: describeChange(change),
      guardWindow: step.guardWindow,
      guardWindowMs: durationMs(step.guardWindow),
      checks: step.checks,
      approvals: service.policy?.approvals.required ?? null,
      deployedWhen:
        step.deployedWhen === undefined
          ? null
          : {
              check: {
                http: step.deployedWhen.http,
                expect: step.deployedWhen.expect,
                severity: "fatal",
              },
              within: step.deployedWhen.within,
              withinMs: durationMs(step.deployedWhen.within),
            },
      regression:
        step.regression === undefined
          ? null
          : {
              maxErrorRatioIncrease: step.regression.maxErrorRatioIncrease,
              minBaselineRatio: DEFAULT_MIN_BASELINE_RATIO,
            },
    });
  });
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    plan: {
      train: train.metadata.name,
      steps,
      finalChecks: train.spec.finalChecks,
      followUps: train.spec.followUps.map((after) => ({ after, afterMs: durationMs(after) })),
    },
  };
}
