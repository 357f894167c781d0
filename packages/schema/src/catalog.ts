import { z } from "zod";
import { Duration, ResourceName, parseDuration } from "./primitives.js";

/** Catalog documents use this apiVersion; a future v2 lives beside it. */
export const API_VERSION = "safedeploy.dev/v1";

const ApiVersion = z.literal(API_VERSION, { message: `must be ${API_VERSION}` });

const Percent = z
  .number({ message: "must be a number" })
  .gt(0, { message: "must be greater than 0" })
  .lt(100, { message: "must be less than 100" });

const Metadata = z.strictObject({ name: ResourceName });

/** A Sloth-style SLI query: PromQL with `{{.window}}` where the window goes. */
const SliQuery = z
  .string()
  .trim()
  .min(1, { message: "must be a PromQL query" })
  .refine((text) => /\{\{\s*\.window\s*\}\}/.test(text), {
    message: "must contain {{.window}} where the window goes, e.g. rate(x[{{.window}}])",
  });

export const Slo = z.strictObject({
  name: ResourceName,
  objective: Percent,
  window: Duration.default("30d"),
  minEvents: z.number().int().nonnegative().default(100),
  sli: z.strictObject({
    errorQuery: SliQuery,
    totalQuery: SliQuery,
    /** `recorded` reads the rules of `safedeploy rules generate` (one query per window for all SLOs). */
    mode: z.enum(["direct", "recorded"]).optional(),
  }),
});
export type Slo = z.infer<typeof Slo>;

/** A hook a strategy runs at a step: an HTTP call, or an edit of a manifest in the env repo. */
export const Hook = z.union([
  z.strictObject({
    http: z.strictObject({
      url: z.url({ message: "must be an http(s) URL" }),
      method: z.enum(["POST", "PUT"]).default("POST"),
      headers: z.record(z.string(), z.string()).optional(),
    }),
  }),
  z.strictObject({
    manifest: z.strictObject({
      path: z.string().min(1),
      patch: z.record(z.string(), z.unknown()),
    }),
  }),
]);
export type Hook = z.infer<typeof Hook>;

const CanarySteps = z
  .array(z.number().gt(0).max(100), { message: "must be a list of weights" })
  .min(1, { message: "needs at least one step" })
  .refine((steps) => steps.every((step, i) => i === 0 || step > (steps[i - 1] ?? 0)), {
    message: "weights must increase",
  });

/** How a promotion is rolled out; the framework sequences it, hooks only execute. */
export const Deployment = z.discriminatedUnion("strategy", [
  z.strictObject({
    strategy: z.literal("canary"),
    canary: z.strictObject({
      steps: CanarySteps,
      bakeTime: Duration,
      promoteHook: Hook.optional(),
      rollbackHook: Hook.optional(),
    }),
  }),
  z.strictObject({
    strategy: z.literal("blue_green"),
    blueGreen: z.strictObject({ cutoverHook: Hook.optional() }).default({}),
  }),
  z.strictObject({
    strategy: z.literal("rolling"),
    rolling: z
      .strictObject({
        maxUnavailable: z
          .union([
            z.number().int().nonnegative(),
            z.string().regex(/^\d{1,3}%$/, { message: "must be like 25%" }),
          ])
          .default("25%"),
      })
      .default({ maxUnavailable: "25%" }),
  }),
]);
export type Deployment = z.infer<typeof Deployment>;

/** A path inside the environment repo: relative, no `..`, no leading slash. */
export const RepoPath = z
  .string()
  .min(1)
  .refine((path) => !path.startsWith("/") && !path.split("/").includes(".."), {
    message: "must be a relative path inside the environment repo (no leading / and no ..)",
  })
  .transform((path) => path.replace(/\/+$/, ""));

export const BurnRateRule = z
  .strictObject({
    severity: z.enum(["fast-burn", "slow-burn"]),
    factor: z.number().positive(),
    long: Duration,
    short: Duration,
  })
  .refine((rule) => (parseDuration(rule.short) ?? 0) < (parseDuration(rule.long) ?? 0), {
    message: "short window must be shorter than long window",
    path: ["short"],
  });
export type BurnRateRule = z.infer<typeof BurnRateRule>;

const IncidentTrigger = z.enum(["slow-burn", "fast-burn", "exhausted", "no-data", "unknown"]);

/** Every Policy field with its default (CONTRACT.md, "Catalog"). */
export const PolicySpec = z.strictObject({
  requireCanary: z.boolean().default(true),
  burnRates: z
    .array(BurnRateRule)
    .min(1)
    .default([
      { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" },
      { severity: "fast-burn", factor: 6, long: "6h", short: "30m" },
      { severity: "slow-burn", factor: 1, long: "3d", short: "6h" },
    ]),
  maxPromotionBurnRate: z.number().nonnegative().default(1),
  freezeOnExhaustion: Duration.default("24h"),
  noData: z.enum(["block", "allow"]).default("block"),
  openIncidentOn: z.array(IncidentTrigger).min(1).default(["fast-burn", "exhausted"]),
  resolveAfter: Duration.default("15m"),
  approvals: z
    .strictObject({ required: z.number().int().min(1).default(1) })
    .default({ required: 1 }),
});
export type PolicySpec = z.infer<typeof PolicySpec>;

/** A Service's own overrides of the default Policy: any subset of its fields. */
export const PolicyOverride = z.strictObject({
  requireCanary: z.boolean().optional(),
  burnRates: z.array(BurnRateRule).min(1).optional(),
  maxPromotionBurnRate: z.number().nonnegative().optional(),
  freezeOnExhaustion: Duration.optional(),
  noData: z.enum(["block", "allow"]).optional(),
  openIncidentOn: z.array(IncidentTrigger).min(1).optional(),
  resolveAfter: Duration.optional(),
  approvals: z.strictObject({ required: z.number().int().min(1) }).optional(),
});
export type PolicyOverride = z.infer<typeof PolicyOverride>;

export const ServiceDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("Service"),
  metadata: z.strictObject({
    name: ResourceName,
    owner: z.string({ message: "is required" }).trim().min(1, { message: "is required" }),
  }),
  spec: z.strictObject({
    slos: z.array(Slo),
    deployment: Deployment.optional(),
    rollback: z.strictObject({ strategy: z.literal("git-revert"), path: RepoPath }).optional(),
    promotion: z
      .strictObject({ safetyMargin: z.number().min(0).lt(1).default(0.25) })
      .default({ safetyMargin: 0.25 }),
    policy: PolicyOverride.optional(),
  }),
});
export type ServiceDocument = z.infer<typeof ServiceDocument>;

export const PolicyDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("Policy"),
  metadata: Metadata,
  spec: PolicySpec.default(PolicySpec.parse({})),
});
export type PolicyDocument = z.infer<typeof PolicyDocument>;

/** `$`, then `.name` and `[index]` steps: the JSON paths health checks may assert on. */
export function isJsonPath(text: string): boolean {
  if (!text.startsWith("$")) return false;
  const step = /\.[\w-]+|\[\d+\]/y;
  step.lastIndex = 1;
  while (step.lastIndex < text.length) if (step.exec(text) === null) return false;
  return true;
}

export const HealthCheck = z.strictObject({
  http: z.url({ message: "must be an http(s) URL" }),
  expect: z
    .strictObject({
      status: z.number().int().min(100).max(599).default(200),
      json: z
        .record(
          z.string().refine(isJsonPath, {
            message: "must be a JSON path like $.status or $.items[0].id",
          }),
          z.unknown(),
        )
        .optional(),
      bodyContains: z.string().optional(),
      maxLatency: Duration.optional(),
    })
    .default({ status: 200 }),
  severity: z.enum(["fatal", "warning"]).default("fatal"),
});
export type HealthCheck = z.infer<typeof HealthCheck>;

export const TrainStep = z
  .strictObject({
    service: ResourceName,
    image: z.string().min(1).optional(),
    patch: z.record(z.string(), z.unknown()).optional(),
    guardWindow: Duration.default("10m"),
    checks: z.array(HealthCheck).default([]),
    regression: z.strictObject({ maxErrorRatioIncrease: z.number().gt(1) }).optional(),
  })
  .refine((step) => (step.image === undefined) !== (step.patch === undefined), {
    message: "needs exactly one of image or patch",
  });
export type TrainStep = z.infer<typeof TrainStep>;

export const ReleaseTrainDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("ReleaseTrain"),
  metadata: Metadata,
  spec: z.strictObject({
    steps: z.array(TrainStep).min(1, { message: "needs at least one step" }),
    finalChecks: z.array(HealthCheck).default([]),
    followUps: z.array(Duration).default(["1h", "4h", "12h"]),
  }),
});
export type ReleaseTrainDocument = z.infer<typeof ReleaseTrainDocument>;

/** Any catalog document, by its `kind`. */
export const CatalogDocument = z.discriminatedUnion("kind", [
  ServiceDocument,
  PolicyDocument,
  ReleaseTrainDocument,
]);
export type CatalogDocument = z.infer<typeof CatalogDocument>;

/** The default Policy when the catalog has none named `default`. */
export const DEFAULT_POLICY_SPEC: PolicySpec = PolicySpec.parse({});

/** A Service's effective policy: its own overrides over the default Policy. */
export function resolvePolicy(base: PolicySpec, override: PolicyOverride | undefined): PolicySpec {
  if (override === undefined) return base;
  const defined = Object.fromEntries(
    Object.entries(override).filter(([, value]) => value !== undefined),
  ) as Partial<PolicySpec>;
  return { ...base, ...defined };
}
