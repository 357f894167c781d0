import { z } from "zod";
import { Severity } from "./domain.js";
import { Duration, HttpUrl, ResourceName, parseDuration } from "./primitives.js";
import { NotifierDocument } from "./notifications.js";

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
  .string({ message: "must be a PromQL query" })
  .trim()
  .min(1, { message: "must be a PromQL query", abort: true })
  .refine((text) => /\{\{\s*\.window\s*\}\}/.test(text), {
    message: "must contain {{.window}} where the window goes, e.g. rate(x[{{.window}}])",
  });

/** One SLO of a Service: an objective over a window, measured by an error and a total query. */
export const Slo = z.strictObject({
  name: ResourceName,
  /** Percent of good events, strictly between 0 and 100 (100 would leave no budget). */
  objective: Percent,
  /** The budget window. */
  window: Duration.default("30d"),
  /** Fewer events than this in the short window means no-data, not a verdict. */
  minEvents: z.number().int().nonnegative().default(100),
  sli: z.strictObject({
    errorQuery: SliQuery,
    totalQuery: SliQuery,
    /** `recorded` reads the rules of `safedeploy rules generate` (one query per window for all SLOs). */
    mode: z.enum(["direct", "recorded"]).optional(),
  }),
});
export type Slo = z.infer<typeof Slo>;

/** A path inside the environment repo: relative, no `..` segment, no leading slash. */
export const RepoPath = z
  .string()
  .min(1, { message: "must be a path inside the environment repo" })
  .refine((path) => !path.startsWith("/") && !path.split("/").includes(".."), {
    message: "must be a relative path inside the environment repo (no leading / and no ..)",
  })
  .transform((path) => path.replace(/\/+$/, ""));

/**
 * A hook a strategy runs at a release-train step: an HTTP call (the release-train service makes
 * it, with an Idempotency-Key), or a JSON merge patch of the workload under `path` in the
 * environment repo (the git actuator commits it on its own branch).
 */
export const Hook = z.union(
  [
    z.strictObject({
      http: z.strictObject({
        url: HttpUrl,
        method: z.enum(["POST", "PUT"]).default("POST"),
        headers: z.record(z.string(), z.string()).optional(),
      }),
    }),
    z.strictObject({
      manifest: z.strictObject({
        path: RepoPath,
        patch: z.record(z.string(), z.json()),
      }),
    }),
  ],
  {
    message: "must be either { http: { url, method?, headers? } } or { manifest: { path, patch } }",
  },
);
export type Hook = z.infer<typeof Hook>;

const CanarySteps = z
  .array(
    z
      .number({ message: "must be a traffic weight" })
      .gt(0, { message: "must be greater than 0" })
      .max(100, { message: "must be at most 100" }),
    { message: "must be a list of traffic weights" },
  )
  .min(1, { message: "needs at least one step" })
  .refine((steps) => steps.every((step, i) => i === 0 || step > (steps[i - 1] ?? 0)), {
    message: "weights must strictly increase",
  });

const MaxUnavailable = z.union(
  [
    z.number().int().nonnegative(),
    z.string().regex(/^(100|[1-9]?\d)%$/, { message: "must be like 25%" }),
  ],
  { message: "must be a count (2) or a percentage (25%)" },
);

/** How a promotion is rolled out; SafeDeploy sequences it, hooks only execute. */
export const Deployment = z.discriminatedUnion(
  "strategy",
  [
    z.strictObject({
      strategy: z.literal("canary"),
      canary: z.strictObject({
        /** Traffic weights in percent, strictly increasing, each in (0, 100]. */
        steps: CanarySteps,
        /** How long each step must stay healthy before the next. */
        bakeTime: Duration,
        promoteHook: Hook.optional(),
        rollbackHook: Hook.optional(),
      }),
    }),
    z.strictObject({
      strategy: z.literal("blue_green"),
      blueGreen: z.strictObject({ cutoverHook: Hook.optional() }).prefault({}),
    }),
    z.strictObject({
      strategy: z.literal("rolling"),
      rolling: z.strictObject({ maxUnavailable: MaxUnavailable.default("25%") }).prefault({}),
    }),
  ],
  { message: "strategy must be canary, blue_green or rolling" },
);
export type Deployment = z.infer<typeof Deployment>;

/**
 * One multi-window burn-rate rule (SRE Workbook): fires when both the long and the short window
 * burn faster than `factor`; the short window must be shorter than the long one.
 */
export const BurnRateRule = z
  .strictObject({
    severity: Severity.extract(["fast-burn", "slow-burn"]),
    factor: z.number().positive(),
    long: Duration,
    short: Duration,
  })
  .refine(
    (rule) => {
      const long = parseDuration(rule.long);
      const short = parseDuration(rule.short);
      // An unparsable window is reported on its own field; do not pile a second error on it.
      return long === undefined || short === undefined || short < long;
    },
    { message: "short window must be shorter than long window", path: ["short"] },
  );
export type BurnRateRule = z.infer<typeof BurnRateRule>;

/** What may open an incident: any severity but normal. */
const IncidentTrigger = Severity.exclude(["normal"]);

/** The SRE Workbook's multi-window, multi-burn-rate table. */
const DEFAULT_BURN_RATES: readonly BurnRateRule[] = [
  { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" },
  { severity: "fast-burn", factor: 6, long: "6h", short: "30m" },
  { severity: "slow-burn", factor: 1, long: "3d", short: "6h" },
];

const policyFields = {
  /** Promotion must go through a canary. */
  requireCanary: z.boolean(),
  /** Checked in order; the first that fires sets the severity. */
  burnRates: z.array(BurnRateRule).min(1, { message: "needs at least one rule" }),
  /** Promotion is blocked while the burn rate is above this. */
  maxPromotionBurnRate: z.number().nonnegative(),
  /** How long promotions stay frozen after the budget is exhausted. */
  freezeOnExhaustion: Duration,
  /** What no-data or unknown means for promotion. */
  noData: z.enum(["block", "allow"]),
  /** Severities that open an incident. */
  openIncidentOn: z.array(IncidentTrigger).min(1, { message: "needs at least one severity" }),
  /** Normal this long after mitigation → resolved. */
  resolveAfter: Duration,
  /** Distinct approvers before a proposal counts as approved. */
  approvals: z.strictObject({ required: z.number().int().min(1) }),
  /**
   * Evidence older than this (or never seen, or dated in the future) is not evidence: the gate
   * says `unknown` (`stale-evidence`). Without it, three poll intervals.
   */
  staleAfter: Duration,
};

/** Every Policy field, each with its default (CONTRACT.md, "Catalog"). */
export const PolicySpec = z.strictObject({
  requireCanary: policyFields.requireCanary.default(true),
  burnRates: policyFields.burnRates.default(() => DEFAULT_BURN_RATES.map((rule) => ({ ...rule }))),
  maxPromotionBurnRate: policyFields.maxPromotionBurnRate.default(1),
  freezeOnExhaustion: policyFields.freezeOnExhaustion.default("24h"),
  noData: policyFields.noData.default("block"),
  openIncidentOn: policyFields.openIncidentOn.default(["fast-burn", "exhausted"]),
  resolveAfter: policyFields.resolveAfter.default("15m"),
  approvals: z
    .strictObject({ required: policyFields.approvals.shape.required.default(1) })
    .prefault({}),
  /** No default here: the services take three of their poll intervals ({@link staleAfterMs}). */
  staleAfter: policyFields.staleAfter.optional(),
});
export type PolicySpec = z.infer<typeof PolicySpec>;

/**
 * A Service's own overrides of the default Policy: any subset of its fields, no defaults.
 * A field given replaces the default's field as a whole (a `burnRates` list is not merged).
 */
export const PartialPolicySpec = z.strictObject({
  requireCanary: policyFields.requireCanary.optional(),
  burnRates: policyFields.burnRates.optional(),
  maxPromotionBurnRate: policyFields.maxPromotionBurnRate.optional(),
  freezeOnExhaustion: policyFields.freezeOnExhaustion.optional(),
  noData: policyFields.noData.optional(),
  openIncidentOn: policyFields.openIncidentOn.optional(),
  resolveAfter: policyFields.resolveAfter.optional(),
  approvals: policyFields.approvals.optional(),
  staleAfter: policyFields.staleAfter.optional(),
});
export type PartialPolicySpec = z.infer<typeof PartialPolicySpec>;

/** A `kind: Service` document: who owns it, its SLOs, how it deploys and rolls back. */
export const ServiceDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("Service"),
  metadata: z.strictObject({
    name: ResourceName,
    owner: z.string({ message: "is required" }).trim().min(1, { message: "is required" }),
  }),
  spec: z.strictObject({
    slos: z.array(Slo).superRefine((slos, ctx) => {
      const seen = new Set<string>();
      slos.forEach((slo, index) => {
        if (seen.has(slo.name)) {
          ctx.addIssue({
            code: "custom",
            message: `duplicate SLO "${slo.name}"`,
            path: [index, "name"],
          });
        }
        seen.add(slo.name);
      });
    }),
    deployment: Deployment.optional(),
    rollback: z
      .strictObject({
        strategy: z.literal("git-revert", { message: "must be git-revert" }),
        /** This service's directory in the environment repo. */
        path: RepoPath,
      })
      .optional(),
    promotion: z
      .strictObject({
        /** Fraction of the budget that must remain to promote. */
        safetyMargin: z
          .number()
          .min(0, { message: "must be at least 0" })
          .lt(1, { message: "must be less than 1" })
          .default(0.25),
      })
      .prefault({}),
    policy: PartialPolicySpec.optional(),
  }),
});
export type ServiceDocument = z.infer<typeof ServiceDocument>;

/** A `kind: Policy` document; the one named `default` applies to every Service. */
export const PolicyDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("Policy"),
  metadata: Metadata,
  spec: PolicySpec.prefault({}),
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

/** An HTTP health check of a release-train step: what the answer must look like. */
export const HealthCheck = z.strictObject({
  http: HttpUrl,
  expect: z
    .strictObject({
      status: z.number().int().min(100).max(599).default(200),
      /** JSON path → the value found there must equal it. */
      json: z
        .record(z.string(), z.json())
        .superRefine((assertions, ctx) => {
          for (const path of Object.keys(assertions)) {
            if (isJsonPath(path)) continue;
            ctx.addIssue({
              code: "custom",
              path: [path],
              message: "must be a JSON path like $.status or $.items[0].id",
            });
          }
        })
        .optional(),
      bodyContains: z.string().optional(),
      maxLatency: Duration.optional(),
    })
    .prefault({}),
  /** A failed `fatal` check halts the train; a `warning` is reported only. */
  severity: z.enum(["fatal", "warning"]).default("fatal"),
});
export type HealthCheck = z.infer<typeof HealthCheck>;

/**
 * When a step's change counts as deployed: a probe that passes once the new version serves
 * (`expect` as in a health check, e.g. `{ json: { "$.version": "v2" } }`), polled until `within`
 * has passed. Without it, a step is deployed when its change is in Git.
 */
export const DeployedWhen = HealthCheck.omit({ severity: true }).extend({
  within: Duration.default("10m"),
});
export type DeployedWhen = z.infer<typeof DeployedWhen>;

/** One step of a release train: one service, one new image or patch, then a guarded wait. */
export const TrainStep = z
  .strictObject({
    service: ResourceName,
    image: z.string().trim().min(1, { message: "must be an image reference" }).optional(),
    patch: z.record(z.string(), z.json()).optional(),
    guardWindow: Duration.default("10m"),
    /** Wait for the change to be live (merged, synced, rolled out) before the guard window. */
    deployedWhen: DeployedWhen.optional(),
    checks: z.array(HealthCheck).default(() => []),
    /** Halt when the error ratio after the step exceeds `maxErrorRatioIncrease` × before. */
    regression: z
      .strictObject({
        maxErrorRatioIncrease: z.number().gt(1, { message: "must be greater than 1" }),
      })
      .optional(),
  })
  .refine((step) => (step.image === undefined) !== (step.patch === undefined), {
    message: "needs exactly one of image or patch",
  });
export type TrainStep = z.infer<typeof TrainStep>;

/** A `kind: ReleaseTrain` document: services promoted one after another. */
export const ReleaseTrainDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("ReleaseTrain"),
  metadata: Metadata,
  spec: z.strictObject({
    steps: z.array(TrainStep).min(1, { message: "needs at least one step" }),
    /** Run after the last step. */
    finalChecks: z.array(HealthCheck).default(() => []),
    /** When to look again after the train finished. */
    followUps: z.array(Duration).default(() => ["1h", "4h", "12h"]),
  }),
});
export type ReleaseTrainDocument = z.infer<typeof ReleaseTrainDocument>;

/** RFC 5545 RRULE parts a freeze window may use (RFC 5545 §3.3.10). */
const RRULE_PARTS = new Set([
  "FREQ",
  "INTERVAL",
  "COUNT",
  "UNTIL",
  "BYSECOND",
  "BYMINUTE",
  "BYHOUR",
  "BYDAY",
  "BYMONTHDAY",
  "BYYEARDAY",
  "BYWEEKNO",
  "BYMONTH",
  "BYSETPOS",
  "WKST",
]);
const RRULE_FREQS = new Set(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]);

/** Allowed values of the numeric BY parts (RFC 5545 §3.3.10): min, max, and whether ± is allowed. */
const RRULE_RANGES: Readonly<Record<string, readonly [number, number, boolean]>> = {
  BYSECOND: [0, 60, false],
  BYMINUTE: [0, 59, false],
  BYHOUR: [0, 23, false],
  BYMONTH: [1, 12, false],
  BYMONTHDAY: [1, 31, true],
  BYYEARDAY: [1, 366, true],
  BYWEEKNO: [1, 53, true],
  BYSETPOS: [1, 366, true],
};

/** What is wrong with an RRULE value's structure, or undefined when it is well formed. */
export function rruleProblem(text: string): string | undefined {
  const body = text.trim().replace(/^RRULE:/i, "");
  const seen = new Map<string, string>();
  for (const part of body.split(";")) {
    const match = /^([A-Z]+)=([-A-Z0-9,+]+)$/i.exec(part.trim());
    if (match === null) return `"${part}" is not a NAME=VALUE part`;
    const name = (match[1] ?? "").toUpperCase();
    if (!RRULE_PARTS.has(name)) return `unknown part ${name}`;
    if (seen.has(name)) return `${name} given twice`;
    seen.set(name, (match[2] ?? "").toUpperCase());
  }
  const freq = seen.get("FREQ");
  if (freq === undefined) return "needs FREQ";
  if (!RRULE_FREQS.has(freq)) return `FREQ must be one of ${[...RRULE_FREQS].join(", ")}`;
  if (seen.has("COUNT") && seen.has("UNTIL")) return "COUNT and UNTIL exclude each other";
  for (const name of ["INTERVAL", "COUNT"]) {
    const value = seen.get(name);
    if (value !== undefined && !/^[1-9]\d*$/.test(value))
      return `${name} must be a positive integer`;
  }
  const byDay = seen.get("BYDAY");
  if (
    byDay !== undefined &&
    !byDay.split(",").every((d) => /^[+-]?\d{0,2}(MO|TU|WE|TH|FR|SA|SU)$/.test(d))
  ) {
    return "BYDAY must list weekdays such as MO,TU or 1FR";
  }
  for (const [name, [min, max, signed]] of Object.entries(RRULE_RANGES)) {
    const value = seen.get(name);
    if (value === undefined) continue;
    const ok = value.split(",").every((item) => {
      if (!/^[+-]?\d{1,3}$/.test(item)) return false;
      const n = Number(item);
      return signed ? Math.abs(n) >= min && Math.abs(n) <= max : n >= min && n <= max;
    });
    if (!ok)
      return `${name} must list integers in ${signed ? `±${min}..${max}` : `${min}..${max}`}`;
  }
  const wkst = seen.get("WKST");
  if (wkst !== undefined && !/^(MO|TU|WE|TH|FR|SA|SU)$/.test(wkst)) return "WKST must be a weekday";
  const until = seen.get("UNTIL");
  if (until !== undefined && !/^\d{8}$|^\d{8}T\d{6}Z$/.test(until)) {
    return "UNTIL must be a UTC date-time like 20271231T230000Z (or a date like 20271231)";
  }
  return undefined;
}

/** Whether the runtime knows `zone` as an IANA time zone. */
function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * A `kind: FreezeWindow` document: a recurring window (RFC 5545 RRULE from a local DTSTART in a
 * time zone, each occurrence lasting `duration`) during which the selected services may not be
 * promoted (`deny`), or outside of which they may not (`allow`: "only then"). Deny wins.
 */
export const FreezeWindowDocument = z.strictObject({
  apiVersion: ApiVersion,
  kind: z.literal("FreezeWindow"),
  metadata: Metadata,
  spec: z
    .strictObject({
      /** `deny`: frozen during each occurrence; `allow`: frozen outside every occurrence. */
      effect: z.enum(["deny", "allow"], { message: "must be deny or allow" }),
      /** Local wall time of the first occurrence, in `timeZone`, without offset. */
      dtstart: z
        .string({ message: "must be a local date and time like 2026-01-02T18:00:00" })
        .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d$|^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/, {
          message: "must be a local date and time like 2026-01-02T18:00:00 (no offset)",
        }),
      timeZone: z
        .string({ message: "must be an IANA time zone like Europe/Berlin" })
        .refine(isTimeZone, { message: "must be an IANA time zone like Europe/Berlin" }),
      /** e.g. `FREQ=WEEKLY;BYDAY=FR` (a leading `RRULE:` is allowed). */
      rrule: z
        .string({ message: "must be an RFC 5545 RRULE like FREQ=WEEKLY;BYDAY=FR" })
        .superRefine((text, ctx) => {
          const problem = rruleProblem(text);
          if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
        }),
      /** How long each occurrence lasts; days and weeks are calendar days in `timeZone`. */
      duration: Duration,
      /** Services by name; `*` selects every service. */
      services: z.array(z.union([ResourceName, z.literal("*")])).optional(),
      /** Services by `metadata.owner`. */
      owners: z.array(z.string().trim().min(1)).optional(),
      reason: z.string({ message: "is required" }).trim().min(1, { message: "is required" }),
    })
    .refine((spec) => (spec.services?.length ?? 0) + (spec.owners?.length ?? 0) > 0, {
      message: "needs services or owners to select what it freezes",
      path: ["services"],
    }),
});
export type FreezeWindowDocument = z.infer<typeof FreezeWindowDocument>;

/** Any catalog document, by its `kind`. */
export const CatalogDocument = z.discriminatedUnion(
  "kind",
  [ServiceDocument, PolicyDocument, ReleaseTrainDocument, FreezeWindowDocument, NotifierDocument],
  { message: "kind must be Service, Policy, ReleaseTrain, FreezeWindow or Notifier" },
);
export type CatalogDocument = z.infer<typeof CatalogDocument>;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** How many poll intervals evidence stays fresh when a policy names no `staleAfter`. */
export const STALE_AFTER_POLL_INTERVALS = 3;

/**
 * How old evidence may be before the gate stops trusting it: the policy's `staleAfter`, else
 * {@link STALE_AFTER_POLL_INTERVALS} poll intervals.
 */
export function staleAfterMs(
  policy: Pick<PolicySpec, "staleAfter">,
  pollIntervalMs: number,
): number {
  const given = policy.staleAfter === undefined ? undefined : parseDuration(policy.staleAfter);
  return given ?? STALE_AFTER_POLL_INTERVALS * pollIntervalMs;
}

/** The default Policy, every field at its default: what applies when no Policy is named `default`. */
export const DEFAULT_POLICY_SPEC: PolicySpec = deepFreeze(PolicySpec.parse({}));

/**
 * A Service's effective policy: each field the override gives replaces the default Policy's
 * field as a whole; every other field is the default's. Pure; returns `defaultPolicy` itself
 * when there is nothing to override.
 */
export function resolvePolicy(defaultPolicy: PolicySpec, override?: PartialPolicySpec): PolicySpec {
  if (override === undefined) return defaultPolicy;
  const given = Object.entries(override).filter(([, value]) => value !== undefined);
  if (given.length === 0) return defaultPolicy;
  return { ...defaultPolicy, ...(Object.fromEntries(given) as Partial<PolicySpec>) };
}
