import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  API_VERSION,
  CatalogDocument,
  Deployment,
  Hook,
  RepoPath,
  ServiceDocument,
  Slo,
} from "@safedeploy/schema";
import { issues, service, slo, train } from "./catalog-fixtures.js";

describe("Service", () => {
  it("accepts the contract's example and fills in the defaults", () => {
    const parsed = ServiceDocument.parse(
      service({
        deployment: { strategy: "canary", canary: { steps: [10, 50, 100], bakeTime: "10m" } },
        rollback: { strategy: "git-revert", path: "envs/prod/checkout" },
      }),
    );
    expect(parsed.apiVersion).toBe(API_VERSION);
    expect(parsed.spec.slos[0]).toEqual({ ...slo, window: "30d", minEvents: 100 });
    expect(parsed.spec.promotion).toEqual({ safetyMargin: 0.25 });
    expect(parsed.spec.rollback).toEqual({ strategy: "git-revert", path: "envs/prod/checkout" });
    expect(parsed.spec.policy).toBeUndefined();
    expect(parsed.spec.deployment).toEqual({
      strategy: "canary",
      canary: { steps: [10, 50, 100], bakeTime: "10m" },
    });
  });

  it("needs a name and a non-empty owner", () => {
    const withMetadata = (metadata: unknown) => ({ ...service(), metadata });
    expect(issues(ServiceDocument, withMetadata({ name: "checkout" }))).toEqual([
      "metadata.owner: is required",
    ]);
    expect(issues(ServiceDocument, withMetadata({ name: "checkout", owner: "  " }))).toEqual([
      "metadata.owner: is required",
    ]);
    expect(issues(ServiceDocument, withMetadata({ name: "Checkout!", owner: "t" }))).toEqual([
      "metadata.name: must be lowercase letters, digits and dashes",
    ]);
    expect(issues(ServiceDocument, { ...service(), apiVersion: "safedeploy.dev/v0" })).toEqual([
      "apiVersion: must be safedeploy.dev/v1",
    ]);
  });

  it("refuses unknown or misspelt fields at every level", () => {
    expect(issues(ServiceDocument, { ...service(), extra: 1 })).toEqual([
      ': Unrecognized key: "extra" (extra)',
    ]);
    const doc = service({ slo: [] });
    expect(issues(ServiceDocument, doc)).toEqual(['spec: Unrecognized key: "slo" (slo)']);
    expect(
      issues(ServiceDocument, { ...service(), metadata: { name: "a", owner: "b", team: "c" } }),
    ).toEqual(['metadata: Unrecognized key: "team" (team)']);
    expect(issues(Slo, { ...slo, objectve: 99 })).toEqual([
      ': Unrecognized key: "objectve" (objectve)',
    ]);
    expect(issues(Slo, { ...slo, sli: { ...slo.sli, query: "x" } })).toEqual([
      'sli: Unrecognized key: "query" (query)',
    ]);
  });
});

describe("SLO", () => {
  it("takes objectives strictly between 0 and 100 percent", () => {
    expect(issues(Slo, { ...slo, objective: 100 })).toEqual(["objective: must be less than 100"]);
    expect(issues(Slo, { ...slo, objective: 0 })).toEqual(["objective: must be greater than 0"]);
    expect(issues(Slo, { ...slo, objective: "99.9" })).toEqual(["objective: must be a number"]);
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (objective) => {
        expect(Slo.safeParse({ ...slo, objective }).success).toBe(objective > 0 && objective < 100);
      }),
    );
  });

  it("checks window and minEvents", () => {
    expect(Slo.parse({ ...slo, window: "7d", minEvents: 0 })).toMatchObject({
      window: "7d",
      minEvents: 0,
    });
    expect(issues(Slo, { ...slo, window: "a month" })).toEqual([
      "window: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
    expect(issues(Slo, { ...slo, minEvents: -1 })).toHaveLength(1);
    expect(issues(Slo, { ...slo, minEvents: 2.5 })).toHaveLength(1);
  });

  it("needs both queries, each with the {{.window}} placeholder", () => {
    expect(issues(Slo, { ...slo, sli: { ...slo.sli, totalQuery: "sum(rate(t[5m]))" } })).toEqual([
      "sli.totalQuery: must contain {{.window}} where the window goes, e.g. rate(x[{{.window}}])",
    ]);
    expect(issues(Slo, { ...slo, sli: { ...slo.sli, errorQuery: "  " } })).toEqual([
      "sli.errorQuery: must be a PromQL query",
    ]);
    expect(issues(Slo, { ...slo, sli: { errorQuery: slo.sli.errorQuery } })).toEqual([
      "sli.totalQuery: must be a PromQL query",
    ]);
    expect(Slo.parse({ ...slo, sli: { ...slo.sli, mode: "recorded" } }).sli.mode).toBe("recorded");
    expect(issues(Slo, { ...slo, sli: { ...slo.sli, mode: "cached" } })).toHaveLength(1);
  });

  it("refuses two SLOs of one service with the same name", () => {
    expect(issues(ServiceDocument, service({ slos: [slo, { ...slo, objective: 99 }] }))).toEqual([
      'spec.slos.1.name: duplicate SLO "availability"',
    ]);
    expect(ServiceDocument.safeParse(service({ slos: [] })).success).toBe(true);
  });
});

describe("rollback and promotion", () => {
  it("keeps the rollback path inside the environment repo", () => {
    expect(RepoPath.parse("envs/prod/checkout/")).toBe("envs/prod/checkout");
    expect(RepoPath.parse("envs/prod/..checkout")).toBe("envs/prod/..checkout");
    for (const bad of ["/etc", "envs/../../secrets", "..", "a/..", ""]) {
      expect(RepoPath.safeParse(bad).success, bad).toBe(false);
    }
    expect(
      issues(ServiceDocument, service({ rollback: { strategy: "git-revert", path: "../x" } })),
    ).toEqual([
      "spec.rollback.path: must be a relative path inside the environment repo (no leading / and no ..)",
    ]);
    expect(
      issues(ServiceDocument, service({ rollback: { strategy: "kubectl", path: "envs/x" } })),
    ).toEqual(["spec.rollback.strategy: must be git-revert"]);
  });

  it("takes a safety margin in [0, 1)", () => {
    const margin = (safetyMargin: number) =>
      ServiceDocument.safeParse(service({ promotion: { safetyMargin } }));
    expect(margin(0).success).toBe(true);
    expect(margin(0.99).success).toBe(true);
    expect(issues(ServiceDocument, service({ promotion: { safetyMargin: 1 } }))).toEqual([
      "spec.promotion.safetyMargin: must be less than 1",
    ]);
    expect(issues(ServiceDocument, service({ promotion: { safetyMargin: -0.1 } }))).toEqual([
      "spec.promotion.safetyMargin: must be at least 0",
    ]);
    expect(ServiceDocument.parse(service({ promotion: {} })).spec.promotion.safetyMargin).toBe(
      0.25,
    );
  });

  it("carries a partial policy override without filling in defaults", () => {
    const parsed = ServiceDocument.parse(service({ policy: { approvals: { required: 2 } } }));
    expect(parsed.spec.policy).toEqual({ approvals: { required: 2 } });
    expect(issues(ServiceDocument, service({ policy: { requireCanry: false } }))).toEqual([
      'spec.policy: Unrecognized key: "requireCanry" (requireCanry)',
    ]);
  });
});

describe("Deployment strategies", () => {
  const canary = (block: Record<string, unknown>) =>
    issues(Deployment, {
      strategy: "canary",
      canary: { steps: [10, 50, 100], bakeTime: "10m", ...block },
    });

  it("accepts canary with hooks, blue_green and rolling, with their defaults", () => {
    expect(
      Deployment.parse({
        strategy: "canary",
        canary: {
          steps: [10, 50, 100],
          bakeTime: "10m",
          promoteHook: { http: { url: "https://hooks.internal/promote" } },
          rollbackHook: {
            manifest: { path: "envs/prod/x/rollout.yaml", patch: { spec: { paused: true } } },
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
    expect(Deployment.parse({ strategy: "rolling", rolling: {} })).toEqual({
      strategy: "rolling",
      rolling: { maxUnavailable: "25%" },
    });
  });

  it("takes canary weights in (0, 100], strictly increasing", () => {
    expect(canary({})).toEqual([]);
    expect(canary({ steps: [100] })).toEqual([]);
    expect(canary({ steps: [50, 10] })).toEqual(["canary.steps: weights must strictly increase"]);
    expect(canary({ steps: [10, 10] })).toEqual(["canary.steps: weights must strictly increase"]);
    expect(canary({ steps: [0, 100] })).toEqual(["canary.steps.0: must be greater than 0"]);
    expect(canary({ steps: [10, 150] })).toEqual(["canary.steps.1: must be at most 100"]);
    expect(canary({ steps: [] })).toEqual(["canary.steps: needs at least one step"]);
    expect(canary({ steps: "10,50" })).toEqual(["canary.steps: must be a list of traffic weights"]);
    expect(canary({ bakeTime: "soon" })).toEqual([
      "canary.bakeTime: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 8 }),
        (weights) => {
          const sorted = [...weights].sort((a, b) => a - b);
          expect(canary({ steps: sorted })).toEqual([]);
          if (sorted.length > 1) expect(canary({ steps: sorted.reverse() })).toHaveLength(1);
        },
      ),
    );
  });

  it("takes maxUnavailable as a count or a percentage", () => {
    const rolling = (maxUnavailable: unknown) =>
      Deployment.safeParse({ strategy: "rolling", rolling: { maxUnavailable } }).success;
    for (const ok of [0, 2, "0%", "25%", "100%"]) expect(rolling(ok), String(ok)).toBe(true);
    for (const bad of [-1, 1.5, "101%", "25", "a lot", "025%", true]) {
      expect(rolling(bad), String(bad)).toBe(false);
    }
  });

  it("refuses unknown strategies and a parameter block of another strategy", () => {
    expect(issues(Deployment, { strategy: "yolo" })).toEqual([
      "strategy: strategy must be canary, blue_green or rolling",
    ]);
    expect(
      issues(Deployment, {
        strategy: "blue_green",
        canary: { steps: [10], bakeTime: "1m" },
      }),
    ).toEqual([': Unrecognized key: "canary" (canary)']);
  });
});

describe("Hook", () => {
  it("is an HTTP call (POST or PUT) or a manifest patch inside the environment repo", () => {
    expect(Hook.parse({ http: { url: "http://a.internal/x", method: "PUT" } })).toEqual({
      http: { url: "http://a.internal/x", method: "PUT" },
    });
    expect(
      Hook.parse({ http: { url: "http://a/x", headers: { "X-Token-Name": "deployer" } } }),
    ).toEqual({
      http: { url: "http://a/x", method: "POST", headers: { "X-Token-Name": "deployer" } },
    });
    expect(Hook.safeParse({ http: { url: "http://a/x", method: "GET" } }).success).toBe(false);
    expect(issues(Hook, { http: { url: "file:///etc/passwd" } })).toEqual([
      "http.url: must be an http(s) URL",
    ]);
    expect(Hook.safeParse({ manifest: { path: "/etc/x.yaml", patch: {} } }).success).toBe(false);
    expect(Hook.safeParse({ manifest: { path: "envs/x.yaml" } }).success).toBe(false);
    const either =
      ": must be either { http: { url, method?, headers? } } or { manifest: { path, patch } }";
    expect(
      issues(Hook, { http: { url: "http://a/x" }, manifest: { path: "x", patch: {} } }),
    ).toEqual([either]);
    expect(issues(Hook, "http://a/x")).toEqual([either]);
    expect(issues(Hook, { http: { url: "http://a/x", methd: "PUT" } })).toEqual([
      'http: Unrecognized key: "methd" (methd)',
    ]);
  });
});

describe("CatalogDocument", () => {
  it("dispatches on kind", () => {
    expect(CatalogDocument.parse(service()).kind).toBe("Service");
    expect(CatalogDocument.parse(train([{ service: "checkout", image: "c:1" }])).kind).toBe(
      "ReleaseTrain",
    );
    expect(
      CatalogDocument.parse({ apiVersion: API_VERSION, kind: "Policy", metadata: { name: "p" } })
        .kind,
    ).toBe("Policy");
    expect(issues(CatalogDocument, { ...service(), kind: "Deployment" })).toEqual([
      "kind: kind must be Service, Policy, ReleaseTrain, FreezeWindow or Notifier",
    ]);
  });
});
