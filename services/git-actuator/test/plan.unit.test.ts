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
