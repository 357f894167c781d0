import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  actionableReasons,
  decideFreeze,
  decideVerdict,
  rollbackAnswers,
  sameVerdict,
} from "@safedeploy/core";
import type { RecordedVerdict } from "@safedeploy/core";

const reason = (code: string) => ({ code, message: code, value: null, threshold: null });
const verdict = (v: "pass" | "block" | "unknown", ...codes: string[]): RecordedVerdict => ({
  allowed: v === "pass",
  verdict: v,
  reasons: codes.map(reason),
});
const t = (second: number) => new Date(Date.UTC(2026, 11, 1, 9, 0, second)).toISOString();

describe("sameVerdict", () => {
  it("compares what a verdict says and its reason codes, not their messages", () => {
    expect(sameVerdict(verdict("block", "freeze-active"), verdict("block", "freeze-active"))).toBe(
      true,
    );
    expect(sameVerdict(verdict("block", "a", "b"), verdict("block", "b", "a"))).toBe(false);
    expect(sameVerdict(verdict("unknown", "no-data"), verdict("block", "no-data"))).toBe(false);
    expect(sameVerdict(null, verdict("pass"))).toBe(false);
  });
});

describe("decideVerdict", () => {
  it("publishes a change, not a repeat, and never one judged before the last", () => {
    const base = { previous: verdict("pass"), previousAt: t(10), restatement: false };
    expect(decideVerdict({ ...base, next: verdict("pass"), at: t(20) })).toEqual({
      publish: false,
      verdictAt: t(10),
    });
    expect(decideVerdict({ ...base, next: verdict("block", "x"), at: t(20) })).toEqual({
      publish: true,
      verdictAt: t(20),
    });
    expect(decideVerdict({ ...base, next: verdict("block", "x"), at: t(5) }).publish).toBe(false);
    // A restatement at start publishes a change without moving the moment.
    expect(
      decideVerdict({ ...base, restatement: true, next: verdict("block", "x"), at: t(5) }),
    ).toEqual({ publish: true, verdictAt: t(10) });
  });

  it("the published moments never go back (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 59 }), block: fc.boolean() })),
        (judgements) => {
          let previous: RecordedVerdict | null = null;
          let previousAt: string | undefined;
          const published: string[] = [];
          for (const j of judgements) {
            const next = j.block ? verdict("block", "x") : verdict("pass");
            const decided = decideVerdict({
              previous,
              previousAt,
              next,
              at: t(j.at),
              restatement: false,
            });
            if (decided.publish) {
              published.push(t(j.at));
              previous = next;
            }
            previousAt = decided.verdictAt;
          }
          expect([...published].sort()).toEqual(published);
        },
      ),
    );
  });
});

describe("proposal rules", () => {
  it("asks no one to act on what the gate cannot see, nor on a failed guard", () => {
    const codes = actionableReasons(
      ["no-data", "unknown", "stale-evidence", "release-guard-failed", "burn-rate-high"].map(
        reason,
      ),
    ).map((r) => r.code);
    expect(codes).toEqual(["burn-rate-high"]);
  });

  it("rolls back a burn or a spent budget, nothing else", () => {
    expect(["slow-burn", "fast-burn", "exhausted"].every((s) => rollbackAnswers(s as never))).toBe(
      true,
    );
    expect(["normal", "no-data", "unknown"].some((s) => rollbackAnswers(s as never))).toBe(false);
  });
});

describe("decideFreeze", () => {
  it("is a manual freeze from now by default, ending after it starts, named by its start", () => {
    const now = t(0);
    expect(
      decideFreeze({ service: "cart", until: t(30), reason: "sale", actor: "ana", now }),
    ).toEqual({
      ok: true,
      freeze: {
        id: `freeze:cart:manual:${now}`,
        from: now,
        until: t(30),
        reason: "sale",
        origin: "manual",
        actor: "ana",
      },
    });
    expect(
      decideFreeze({ service: "cart", from: t(30), until: t(30), reason: "x", actor: "a", now }),
    ).toEqual({ ok: false, field: "until", message: "must be after from" });
  });
});
