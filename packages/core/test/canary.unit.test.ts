import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canaryReadiness, nextCanaryWeight } from "@safedeploy/core";

const since = "2026-11-24T09:00:00.000Z";
const at = (minutes: number) => new Date(Date.parse(since) + minutes * 60_000).toISOString();
const base = {
  canary: { weight: 10, since, healthyAt: null },
  steps: [10, 50, 100],
  bakeTimeMs: 10 * 60_000,
  allowed: true,
  evaluatedAt: at(10),
};

describe("nextCanaryWeight", () => {
  it("is the first declared step above the current weight", () => {
    expect(nextCanaryWeight([10, 50, 100], 10)).toBe(50);
    expect(nextCanaryWeight([10, 50, 100], 25)).toBe(50);
    expect(nextCanaryWeight([10, 50, 100], 0)).toBe(10);
    expect(nextCanaryWeight([10, 50, 100], 100)).toBeNull();
  });
});

describe("canaryReadiness", () => {
  it("is ready once a healthy step has baked for its bake time", () => {
    expect(canaryReadiness(base)).toEqual({ ready: true, next: 50 });
  });

  it.each([
    ["not in a canary", { canary: null }, "not in a canary step"],
    ["already baked", { canary: { ...base.canary, healthyAt: at(10) } }, "this step already baked"],
    ["last step", { canary: { ...base.canary, weight: 100 } }, "weight 100 is the last step"],
    ["gate blocks", { allowed: false }, "the gate blocks promotion"],
    ["too early", { evaluatedAt: at(9) }, "baked 540000 ms of 600000 ms"],
  ])("is not ready when %s", (_name, override, reason) => {
    expect(canaryReadiness({ ...base, ...override })).toEqual({ ready: false, reason });
  });

  it("is never ready before the bake time, and always promotes to a larger weight (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 0, max: 60 }),
        (steps, weight, minutes, bakeMinutes) => {
          const sorted = [...steps].sort((a, b) => a - b);
          const result = canaryReadiness({
            ...base,
            steps: sorted,
            canary: { weight, since, healthyAt: null },
            bakeTimeMs: bakeMinutes * 60_000,
            evaluatedAt: at(minutes),
          });
          if (minutes < bakeMinutes) expect(result.ready).toBe(false);
          if (result.ready) {
            expect(result.next).toBeGreaterThan(weight);
            expect(sorted).toContain(result.next);
          }
        },
      ),
    );
  });
});
