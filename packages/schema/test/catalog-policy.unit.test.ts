import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BurnRateRule,
  DEFAULT_POLICY_SPEC,
  PartialPolicySpec,
  PolicyDocument,
  PolicySpec,
  formatDuration,
  resolvePolicy,
} from "@safedeploy/schema";
import { issues } from "./catalog-fixtures.js";

const CONTRACT_DEFAULTS = {
  requireCanary: true,
  burnRates: [
    { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" },
    { severity: "fast-burn", factor: 6, long: "6h", short: "30m" },
    { severity: "slow-burn", factor: 1, long: "3d", short: "6h" },
  ],
  maxPromotionBurnRate: 1,
  freezeOnExhaustion: "24h",
  noData: "block",
  openIncidentOn: ["fast-burn", "exhausted"],
  resolveAfter: "15m",
  approvals: { required: 1 },
};

const policy = (spec?: unknown) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "Policy",
  metadata: { name: "default" },
  ...(spec === undefined ? {} : { spec }),
});

const minutes = (count: number) => formatDuration(count * 60_000);

/** A valid burn-rate rule: the short window a fraction of the long one. */
const burnRateRule = fc
  .record({
    severity: fc.constantFrom("fast-burn" as const, "slow-burn" as const),
    factor: fc.double({ min: 0.1, max: 100, noNaN: true }),
    short: fc.integer({ min: 1, max: 600 }),
    extra: fc.integer({ min: 1, max: 10_000 }),
  })
  .map(({ severity, factor, short, extra }) => ({
    severity,
    factor,
    short: minutes(short),
    long: minutes(short + extra),
  }));

/** Any valid override: each field present or not. */
const partialPolicySpec = fc.record(
  {
    requireCanary: fc.boolean(),
    burnRates: fc.array(burnRateRule, { minLength: 1, maxLength: 4 }),
    maxPromotionBurnRate: fc.double({ min: 0, max: 20, noNaN: true }),
    freezeOnExhaustion: fc.integer({ min: 1, max: 10_000 }).map(minutes),
    noData: fc.constantFrom("block" as const, "allow" as const),
    openIncidentOn: fc.uniqueArray(
      fc.constantFrom(
        "slow-burn" as const,
        "fast-burn" as const,
        "exhausted" as const,
        "no-data" as const,
        "unknown" as const,
      ),
      { minLength: 1 },
    ),
    resolveAfter: fc.integer({ min: 1, max: 10_000 }).map(minutes),
    approvals: fc.integer({ min: 1, max: 5 }).map((required) => ({ required })),
    staleAfter: fc.integer({ min: 1, max: 10_000 }).map(minutes),
  },
  { requiredKeys: [] },
);

/** A valid full policy: the defaults under some override. */
const policySpec = partialPolicySpec.map((override) => PolicySpec.parse(override));

describe("Policy defaults", () => {
  it("are the contract's values, the SRE Workbook burn-rate table included", () => {
    expect(DEFAULT_POLICY_SPEC).toEqual(CONTRACT_DEFAULTS);
    expect(PolicySpec.parse({})).toEqual(CONTRACT_DEFAULTS);
    expect(PolicyDocument.parse(policy()).spec).toEqual(CONTRACT_DEFAULTS);
    expect(PolicyDocument.parse(policy({ approvals: {} })).spec).toEqual(CONTRACT_DEFAULTS);
  });

  it("fill only the fields a Policy leaves out", () => {
    expect(
      PolicyDocument.parse(policy({ noData: "allow", approvals: { required: 2 } })).spec,
    ).toEqual({ ...CONTRACT_DEFAULTS, noData: "allow", approvals: { required: 2 } });
  });

  it("are frozen, and every parse gets its own copy", () => {
    expect(Object.isFrozen(DEFAULT_POLICY_SPEC)).toBe(true);
    expect(Object.isFrozen(DEFAULT_POLICY_SPEC.burnRates[0])).toBe(true);
    const first = PolicySpec.parse({});
    first.burnRates[0]!.factor = 99;
    first.openIncidentOn.push("no-data");
    expect(PolicySpec.parse({})).toEqual(CONTRACT_DEFAULTS);
  });
});

describe("Policy fields", () => {
  it("refuses values outside their ranges and enums", () => {
    expect(issues(PolicySpec, { approvals: { required: 0 } })).toEqual([
      "approvals.required: Too small: expected number to be >=1",
    ]);
    expect(issues(PolicySpec, { approvals: { required: 1.5 } })).toHaveLength(1);
    expect(issues(PolicySpec, { noData: "ignore" })).toHaveLength(1);
    expect(issues(PolicySpec, { maxPromotionBurnRate: -1 })).toHaveLength(1);
    expect(issues(PolicySpec, { requireCanary: "yes" })).toHaveLength(1);
    expect(issues(PolicySpec, { freezeOnExhaustion: "a day" })).toEqual([
      "freezeOnExhaustion: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
    expect(issues(PolicySpec, { resolveAfter: "0s" })).toHaveLength(1);
    expect(issues(PolicySpec, { burnRates: [] })).toEqual(["burnRates: needs at least one rule"]);
    expect(issues(PolicySpec, { maxPromotionBurnRat: 1 })).toEqual([
      ': Unrecognized key: "maxPromotionBurnRat" (maxPromotionBurnRat)',
    ]);
  });

  it("opens incidents on any severity but normal", () => {
    expect(
      PolicySpec.parse({ openIncidentOn: ["slow-burn", "no-data", "unknown"] }).openIncidentOn,
    ).toEqual(["slow-burn", "no-data", "unknown"]);
    expect(issues(PolicySpec, { openIncidentOn: ["normal"] })).toHaveLength(1);
    expect(issues(PolicySpec, { openIncidentOn: ["sev1"] })).toHaveLength(1);
    expect(issues(PolicySpec, { openIncidentOn: [] })).toEqual([
      "openIncidentOn: needs at least one severity",
    ]);
  });
});

describe("BurnRateRule", () => {
  const rule = { severity: "fast-burn", factor: 14.4, long: "1h", short: "5m" };

  it("needs the short window shorter than the long one", () => {
    expect(issues(BurnRateRule, rule)).toEqual([]);
    expect(issues(BurnRateRule, { ...rule, long: "5m", short: "1h" })).toEqual([
      "short: short window must be shorter than long window",
    ]);
    expect(issues(BurnRateRule, { ...rule, long: "1h", short: "60m" })).toEqual([
      "short: short window must be shorter than long window",
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 5000 }), (a, b) => {
        const valid = BurnRateRule.safeParse({ ...rule, short: minutes(a), long: minutes(b) });
        expect(valid.success).toBe(a < b);
      }),
    );
  });

  it("reports a bad window once, without a second complaint about the order", () => {
    expect(issues(BurnRateRule, { ...rule, long: "an hour" })).toEqual([
      "long: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
  });

  it("takes fast-burn or slow-burn and a positive factor", () => {
    expect(issues(BurnRateRule, { ...rule, severity: "exhausted" })).toHaveLength(1);
    expect(issues(BurnRateRule, { ...rule, factor: 0 })).toHaveLength(1);
    expect(issues(BurnRateRule, { ...rule, window: "1h" })).toHaveLength(1);
  });
});

describe("PartialPolicySpec", () => {
  it("fills in nothing and refuses unknown fields", () => {
    expect(PartialPolicySpec.parse({})).toEqual({});
    expect(PartialPolicySpec.parse({ noData: "allow" })).toEqual({ noData: "allow" });
    expect(issues(PartialPolicySpec, { approvals: {} })).toEqual([
      "approvals.required: Invalid input: expected number, received undefined",
    ]);
    expect(
      issues(PartialPolicySpec, {
        burnRates: [{ ...DEFAULT_POLICY_SPEC.burnRates[0], short: "2h" }],
      }),
    ).toEqual(["burnRates.0.short: short window must be shorter than long window"]);
    expect(issues(PartialPolicySpec, { requireCanry: false })).toHaveLength(1);
  });

  it("accepts every generated override (the generators below are valid)", () => {
    fc.assert(
      fc.property(partialPolicySpec, (override) => {
        expect(PartialPolicySpec.parse(override)).toEqual(override);
      }),
    );
  });
});

describe("resolvePolicy", () => {
  it("is the default itself when there is nothing to override", () => {
    expect(resolvePolicy(DEFAULT_POLICY_SPEC)).toBe(DEFAULT_POLICY_SPEC);
    expect(resolvePolicy(DEFAULT_POLICY_SPEC, undefined)).toBe(DEFAULT_POLICY_SPEC);
    expect(resolvePolicy(DEFAULT_POLICY_SPEC, {})).toBe(DEFAULT_POLICY_SPEC);
  });

  it("takes each field from the override when it gives one, else from the default", () => {
    fc.assert(
      fc.property(policySpec, partialPolicySpec, (base, override) => {
        const resolved = resolvePolicy(base, override);
        for (const key of Object.keys(base) as (keyof typeof base)[]) {
          expect(resolved[key]).toEqual(key in override ? override[key] : base[key]);
        }
        // Every field of the default, and an override's field the default leaves unset
        // (staleAfter has no default: three poll intervals).
        expect(Object.keys(resolved).sort()).toEqual(
          [...new Set([...Object.keys(base), ...Object.keys(override)])].sort(),
        );
      }),
    );
  });

  it("always yields a valid policy and leaves its inputs alone", () => {
    fc.assert(
      fc.property(policySpec, partialPolicySpec, (base, override) => {
        const before = structuredClone({ base, override });
        const resolved = resolvePolicy(base, override);
        expect(PolicySpec.parse(resolved)).toEqual(resolved);
        expect({ base, override }).toEqual(before);
      }),
    );
  });

  it("is idempotent, and applying two overrides is applying their merge", () => {
    fc.assert(
      fc.property(policySpec, partialPolicySpec, partialPolicySpec, (base, first, second) => {
        const once = resolvePolicy(base, first);
        expect(resolvePolicy(once, first)).toEqual(once);
        expect(resolvePolicy(resolvePolicy(base, first), second)).toEqual(
          resolvePolicy(base, { ...first, ...second }),
        );
      }),
    );
  });

  it("replaces a list as a whole rather than merging it", () => {
    const onlyOne = [{ severity: "slow-burn" as const, factor: 2, long: "1d", short: "2h" }];
    expect(resolvePolicy(DEFAULT_POLICY_SPEC, { burnRates: onlyOne }).burnRates).toEqual(onlyOne);
  });
});
