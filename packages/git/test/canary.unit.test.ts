import { describe, expect, it } from "vitest";
import { editCanaryWeight, editRolloutPaused } from "../src/index.js";
import { paymentsFile, rollout } from "./fixtures.js";

describe("editCanaryWeight", () => {
  it("replaces only the bytes of the first setWeight in a multi-document file", () => {
    const source = paymentsFile("v1");
    const edit = editCanaryWeight(source, 10, 30);
    expect(edit).toMatchObject({ kind: "edited", rollout: "payments" });
    if (edit.kind !== "edited") return;
    const at = source.indexOf("setWeight: 10") + "setWeight: ".length;
    expect(edit.text.slice(0, at)).toBe(source.slice(0, at));
    expect(edit.text.slice(at + 2)).toBe(source.slice(at + 2));
    expect(edit.text.slice(at, at + 2)).toBe("30");
  });

  it("reports drift, a missing step and files without a Rollout", () => {
    expect(editCanaryWeight(rollout("a", "v1", 40), 10, 50)).toMatchObject({ kind: "problem" });
    expect(
      editCanaryWeight(rollout("a", "v1").replace(/setWeight/g, "setCanaryScale"), 10, 50),
    ).toMatchObject({
      kind: "problem",
      reason: "Rollout a has no setWeight step",
    });
    expect(editCanaryWeight("kind: Deployment\n", 10, 50)).toEqual({ kind: "no-rollout" });
  });
});

describe("editRolloutPaused", () => {
  it("inserts spec.paused: true at the spec's indentation, leaving every other byte", () => {
    const source = paymentsFile("v1");
    const edit = editRolloutPaused(source);
    expect(edit).toMatchObject({ kind: "edited", rollout: "payments" });
    if (edit.kind !== "edited") return;
    const at = source.indexOf("  replicas: 4");
    expect(edit.text).toBe(`${source.slice(0, at)}  paused: true\n${source.slice(at)}`);
    expect(editRolloutPaused(edit.text)).toEqual({
      kind: "problem",
      reason: "Rollout payments is already paused",
    });
  });

  it("flips an explicit paused: false, and refuses files it cannot pause", () => {
    const unpaused = rollout("a", "v1").replace(
      "  replicas: 4",
      "  paused: false # resumed\n  replicas: 4",
    );
    const edit = editRolloutPaused(unpaused);
    expect(edit).toEqual({
      kind: "edited",
      rollout: "a",
      text: unpaused.replace("paused: false", "paused: true"),
    });
    expect(editRolloutPaused("kind: Deployment\n")).toEqual({ kind: "no-rollout" });
    expect(editRolloutPaused("kind: Rollout\nmetadata: { name: b }\nspec: {}\n")).toMatchObject({
      kind: "problem",
    });
  });
});
