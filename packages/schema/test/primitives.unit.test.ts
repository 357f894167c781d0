import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Duration, ResourceName, formatDuration, parseDuration } from "@safedeploy/schema";

describe("parseDuration", () => {
  it.each([
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["30d", 2_592_000_000],
    ["1w", 604_800_000],
    ["250ms", 250],
    ["1y", 31_536_000_000],
  ])("parses %s", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "5", "m5", "5 m", "1m1h", "-5m", "5x", "1.5h"])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it("round-trips through formatDuration", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 31_536_000_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it("refuses negative or fractional milliseconds", () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(1.5)).toThrow(RangeError);
  });
});

describe("Duration and ResourceName schemas", () => {
  it("accepts positive durations only", () => {
    expect(Duration.safeParse("10m").success).toBe(true);
    expect(Duration.safeParse("0s").success).toBe(false);
    expect(Duration.safeParse("ten minutes").success).toBe(false);
  });

  it("accepts DNS-label names only", () => {
    expect(ResourceName.safeParse("checkout-v2").success).toBe(true);
    for (const bad of ["Checkout", "-a", "a-", "a_b", "", "x".repeat(64)]) {
      expect(ResourceName.safeParse(bad).success).toBe(false);
    }
  });
});
