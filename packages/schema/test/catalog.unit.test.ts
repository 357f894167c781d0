import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY_SPEC,
  Deployment,
  HealthCheck,
  PolicyDocument,
  PolicyOverride,
  ReleaseTrainDocument,
  RepoPath,
  ServiceDocument,
  isJsonPath,
  resolvePolicy,
} from "@safedeploy/schema";

const slo = {
  name: "availability",
  objective: 99.9,
  sli: { errorQuery: "sum(rate(e[{{.window}}]))", totalQuery: "sum(rate(t[{{ .window }}]))" },
};
const service = (spec: Record<string, unknown>) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "Service",
  metadata: { name: "checkout", owner: "team-payments" },
  spec: { slos: [slo], ...spec },
});
const issuesOf = (result: {
  success: boolean;
  error?: { issues: { path: PropertyKey[]; message: string }[] };
}) => (result.error?.issues ?? []).map((issue) => `${issue.path.join(".")}: ${issue.message}`);

describe("Service", () => {
  it("applies defaults to SLOs and promotion", () => {
    const parsed = ServiceDocument.parse(service({}));
    expect(parsed.spec.slos[0]).toMatchObject({ window: "30d", minEvents: 100 });
    expect(parsed.spec.promotion.safetyMargin).toBe(0.25);
  });

  it("refuses objectives outside (0, 100), queries without {{.window}}, and unknown fields", () => {
    for (const objective of [0, 100, 120, -1]) {
      expect(ServiceDocument.safeParse(service({ slos: [{ ...slo, objective }] })).success).toBe(
        false,
      );
    }
    const noWindow = ServiceDocument.safeParse(
      service({ slos: [{ ...slo, sli: { ...slo.sli, totalQuery: "sum(rate(t[5m]))" } }] }),
    );
    expect(issuesOf(noWindow)[0]).toMatch(
      /^spec\.slos\.0\.sli\.totalQuery: must contain \{\{\.window\}\}/,
    );
    expect(ServiceDocument.safeParse({ ...service({}), extra: 1 }).success).toBe(false);
  });

  it("requires a rollback path inside the repo", () => {
    expect(RepoPath.parse("envs/prod/checkout/")).toBe("envs/prod/checkout");
    for (const bad of ["/etc", "envs/../../secrets", ""])
      expect(RepoPath.safeParse(bad).success).toBe(false);
    expect(
      ServiceDocument.safeParse(service({ rollback: { strategy: "git-revert", path: "../x" } }))
        .success,
    ).toBe(false);
  });
});

describe("Deployment strategies", () => {
  it("accepts canary, blue_green and rolling with their parameter blocks", () => {
    expect(
      Deployment.parse({
        strategy: "canary",
        canary: {
          steps: [10, 50, 100],
          bakeTime: "10m",
          promoteHook: { http: { url: "http://hooks.internal/promote" } },
          rollbackHook: {
            manifest: { path: "envs/prod/x/rollout.yaml", patch: { "spec.paused": true } },
          },
        },
      }),
    ).toMatchObject({ canary: { promoteHook: { http: { method: "POST" } } } });
    expect(Deployment.parse({ strategy: "blue_green" })).toEqual({
      strategy: "blue_green",
      blueGreen: {},
    });
    expect(Deployment.parse({ strategy: "rolling" })).toEqual({
      strategy: "rolling",
      rolling: { maxUnavailable: "25%" },
    });
    expect(Deployment.parse({ strategy: "rolling", rolling: { maxUnavailable: 2 } })).toMatchObject(
      {
        rolling: { maxUnavailable: 2 },
      },
    );
  });

  it("refuses decreasing or out-of-range canary weights and unknown strategies", () => {
    const canary = (steps: number[]) =>
      Deployment.safeParse({ strategy: "canary", canary: { steps, bakeTime: "1m" } });
    expect(canary([50, 10]).success).toBe(false);
    expect(canary([0, 100]).success).toBe(false);
    expect(canary([10, 150]).success).toBe(false);
    expect(canary([]).success).toBe(false);
    expect(Deployment.safeParse({ strategy: "yolo" }).success).toBe(false);
    expect(
      Deployment.safeParse({ strategy: "rolling", rolling: { maxUnavailable: "a lot" } }).success,
    ).toBe(false);
  });
});

describe("Policy", () => {
  it("defaults every field to the contract's values", () => {
    expect(DEFAULT_POLICY_SPEC).toEqual({
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
    });
    expect(
      PolicyDocument.parse({
        apiVersion: "safedeploy.dev/v1",
        kind: "Policy",
        metadata: { name: "default" },
      }).spec,
    ).toEqual(DEFAULT_POLICY_SPEC);
  });

  it("refuses a burn rule whose short window is not shorter than its long one", () => {
    const result = PolicyOverride.safeParse({
      burnRates: [{ severity: "fast-burn", factor: 2, long: "5m", short: "1h" }],
    });
    expect(issuesOf(result)).toEqual([
      "burnRates.0.short: short window must be shorter than long window",
    ]);
  });

  it("resolvePolicy: no override is the base; an override wins field by field", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 1, max: 5 }), (requireCanary, required) => {
        expect(resolvePolicy(DEFAULT_POLICY_SPEC, undefined)).toBe(DEFAULT_POLICY_SPEC);
        const resolved = resolvePolicy(DEFAULT_POLICY_SPEC, {
          requireCanary,
          approvals: { required },
        });
        expect(resolved).toEqual({
          ...DEFAULT_POLICY_SPEC,
          requireCanary,
          approvals: { required },
        });
        expect(resolvePolicy(DEFAULT_POLICY_SPEC, {})).toEqual(DEFAULT_POLICY_SPEC);
      }),
    );
  });
});

describe("ReleaseTrain", () => {
  const train = (steps: unknown[]) => ({
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name: "t" },
    spec: { steps },
  });

  it("applies defaults and needs exactly one of image or patch per step", () => {
    const parsed = ReleaseTrainDocument.parse(train([{ service: "a", image: "a:1" }]));
    expect(parsed.spec).toMatchObject({ finalChecks: [], followUps: ["1h", "4h", "12h"] });
    expect(parsed.spec.steps[0]).toMatchObject({ guardWindow: "10m", checks: [] });
    expect(ReleaseTrainDocument.safeParse(train([{ service: "a" }])).success).toBe(false);
    expect(
      ReleaseTrainDocument.safeParse(train([{ service: "a", image: "a:1", patch: {} }])).success,
    ).toBe(false);
    expect(ReleaseTrainDocument.safeParse(train([])).success).toBe(false);
  });

  it("validates health checks, including JSON paths", () => {
    expect(HealthCheck.parse({ http: "http://a/healthz" })).toEqual({
      http: "http://a/healthz",
      expect: { status: 200 },
      severity: "fatal",
    });
    expect(
      HealthCheck.safeParse({ http: "http://a", expect: { json: { status: "ok" } } }).success,
    ).toBe(false);
    expect(isJsonPath("$")).toBe(true);
    expect(isJsonPath("$.items[0].id")).toBe(true);
    expect(isJsonPath("$.a..b")).toBe(false);
    expect(isJsonPath("a.b")).toBe(false);
  });
});
