import { describe, expect, it } from "vitest";
import { gitPlanFor } from "../src/plan.js";

describe("gitPlanFor promote-release", () => {
  it("sets an image under the service's path, with or without a container", () => {
    expect(
      gitPlanFor("promote-release", { action: "set-image", path: "envs/prod/a", image: "r/a:v2" }),
    ).toEqual({
      kind: "change",
      change: { action: "set-image", path: "envs/prod/a", image: "r/a:v2" },
    });
    expect(
      gitPlanFor("promote-release", {
        action: "set-image",
        path: "envs/prod/a",
        image: "r/a:v2",
        container: "app",
      }),
    ).toEqual({
      kind: "change",
      change: { action: "set-image", path: "envs/prod/a", image: "r/a:v2", container: "app" },
    });
  });

  it("refuses a path outside the repo, an image with spaces or another action", () => {
    for (const plan of [
      { action: "set-image", path: "../x", image: "a:1" },
      { action: "set-image", path: "x", image: "a:1 b" },
      { action: "git-revert", path: "x" },
    ]) {
      expect(gitPlanFor("promote-release", plan).kind).toBe("invalid");
    }
  });

  it("patches the workload with a merge patch, which must change something", () => {
    expect(
      gitPlanFor("promote-release", {
        action: "patch-manifest",
        path: "envs/prod/a",
        patch: { spec: { replicas: 3 } },
      }),
    ).toEqual({
      kind: "change",
      change: { action: "patch-manifest", path: "envs/prod/a", patch: { spec: { replicas: 3 } } },
    });
    expect(
      gitPlanFor("promote-release", { action: "patch-manifest", path: "envs/prod/a", patch: {} }),
    ).toMatchObject({
      kind: "invalid",
      reason: expect.stringContaining("must change something") as string,
    });
  });
});
