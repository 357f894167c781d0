import { describe, expect, it } from "vitest";
import { EVENT_DATA } from "@safedeploy/schema";

const at = "2026-11-24T09:00:00.000Z";
const window = {
  window: "5m",
  errorQuery: "e",
  totalQuery: "t",
  errors: 1,
  total: 100,
  status: "ok",
};
const sloSnapshot = (slo: string, evaluatedAt = at) => ({
  slo,
  objective: 99.9,
  sloWindow: "30d",
  minEvents: 10,
  mode: "direct",
  evaluatedAt,
  windows: [window],
});
const sloEvaluation = (slo: string) => ({
  slo,
  evaluatedAt: at,
  objective: 99.9,
  severity: "normal",
  burn: "normal",
  budget: "ok",
  budgetRemaining: 0.9,
  errorRatio: 0.0001,
  burnRates: [],
  rules: [],
  explanation: "normal",
  windows: [window],
});

describe("service-wide snapshots and evaluations", () => {
  it("hold every SLO of a service at one moment", () => {
    const snapshot = EVENT_DATA["metrics.snapshot"].parse({
      evaluatedAt: at,
      slos: [sloSnapshot("availability"), sloSnapshot("latency")],
    });
    expect(snapshot.slos.map((s) => s.slo)).toEqual(["availability", "latency"]);
    const evaluation = EVENT_DATA["budget.evaluated"].parse({
      snapshotId: "s",
      evaluatedAt: at,
      slos: [sloEvaluation("availability")],
    });
    expect(evaluation.slos[0]?.burn).toBe("normal");
  });

  it("refuse an SLO of another moment, a repeated SLO, and none at all, naming the field", () => {
    const other = EVENT_DATA["metrics.snapshot"].safeParse({
      evaluatedAt: at,
      slos: [sloSnapshot("availability", "2026-11-24T09:00:30.000Z")],
    });
    expect(other.success).toBe(false);
    expect(other.error?.issues[0]?.path).toEqual(["slos", 0, "evaluatedAt"]);
    const twice = EVENT_DATA["budget.evaluated"].safeParse({
      snapshotId: "s",
      evaluatedAt: at,
      slos: [sloEvaluation("availability"), sloEvaluation("availability")],
    });
    expect(twice.error?.issues[0]).toMatchObject({
      path: ["slos", 1, "slo"],
      message: "availability appears twice",
    });
    expect(EVENT_DATA["metrics.snapshot"].safeParse({ evaluatedAt: at, slos: [] }).success).toBe(
      false,
    );
  });

  it("read a message recorded with one SLO, before burn and budget were apart, as one of one SLO", () => {
    expect(EVENT_DATA["metrics.snapshot"].parse(sloSnapshot("availability"))).toEqual({
      evaluatedAt: at,
      slos: [sloSnapshot("availability")],
    });
    const oldest: Record<string, unknown> = { ...sloEvaluation("availability") };
    delete oldest.burn;
    delete oldest.budget;
    const read = EVENT_DATA["budget.evaluated"].parse({
      ...oldest,
      snapshotId: "s",
      severity: "exhausted",
      budgetRemaining: -0.2,
    });
    expect(read).toMatchObject({
      snapshotId: "s",
      evaluatedAt: at,
      slos: [{ slo: "availability", severity: "exhausted", burn: "unknown", budget: "exhausted" }],
    });
    expect(read.slos[0]).not.toHaveProperty("snapshotId");
  });
});
