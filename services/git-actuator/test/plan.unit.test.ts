import { describe, expect, it } from "vitest";
import { gitPlanFor } from "../src/plan.js";

describe("gitPlanFor", () => {
  it("accepts the plan of each kind", () => {
    expect(
      gitPlanFor("rollback-rollout", { action: "git-revert", path: "envs/prod/checkout" }),
    ).toEqual({
      kind: "change",
      change: { action: "git-revert", path: "envs/prod/checkout" },
    });
    expect(
      gitPlanFor("promote-canary", {
        action: "set-canary-weight",
        path: "envs/prod/a",
        from: 10,
        to: 50,
      }),
    ).toEqual({
      kind: "change",
      change: { action: "set-canary-weight", path: "envs/prod/a", from: 10, to: 50 },
    });
    expect(
      gitPlanFor("block-promotion", { action: "pause-rollout", path: "x", reasons: [] }),
    ).toEqual({
      kind: "change",
      change: { action: "pause-rollout", path: "x" },
    });
    expect(gitPlanFor("block-promotion", { action: "record-only", reasons: [] })).toEqual({
      kind: "none",
    });
  });

  it("passes a rollback's burn start through, validated as an ISO time", () => {
    const plan = { action: "git-revert", path: "envs/prod/checkout" };
    expect(
      gitPlanFor("rollback-rollout", { ...plan, burnBegan: "2026-11-24T09:00:00.000Z" }),
    ).toEqual({
      kind: "change",
      change: { ...plan, burnBegan: "2026-11-24T09:00:00.000Z" },
    });
    expect(
      gitPlanFor("rollback-rollout", { ...plan, burnBegan: "2026-11-24T10:00:00+01:00" }),
    ).toEqual({ kind: "change", change: { ...plan, burnBegan: "2026-11-24T10:00:00+01:00" } });
    const invalid = gitPlanFor("rollback-rollout", { ...plan, burnBegan: "yesterday" });
    expect(invalid.kind === "invalid" ? invalid.reason : "accepted").toMatch(
      /^invalid rollback-rollout plan: burnBegan:/,
    );
  });

  it("refuses a plan that does not fit its kind, or leaves the repository", () => {
    const reason = (kind: "rollback-rollout" | "promote-canary", plan: unknown) => {
      const result = gitPlanFor(kind, plan);
      return result.kind === "invalid" ? result.reason : `accepted ${JSON.stringify(result)}`;
    };
    expect(
      reason("rollback-rollout", { action: "set-canary-weight", path: "a", from: 1, to: 2 }),
    ).toMatch(/^invalid rollback-rollout plan: action/);
    expect(reason("rollback-rollout", { action: "git-revert", path: "../../etc" })).toMatch(
      /path: must be a relative path inside the repository/,
    );
    expect(
      reason("promote-canary", { action: "set-canary-weight", path: "a", from: 10, to: 150 }),
    ).toMatch(/to:/);
    expect(reason("promote-canary", { action: "set-canary-weight", path: "a", from: 10 })).toMatch(
      /to:/,
    );
  });
});
