import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EMPTY_SERVICE_STATE,
  decideIncident,
  decidePolicyIncident,
  structuralViolations,
} from "@safedeploy/core";
import type { ServiceIncidentState, VerdictInput } from "@safedeploy/core";
import type { GateReason } from "@safedeploy/schema";

const t = (minute: number) => new Date(Date.UTC(2026, 10, 24, 9, minute)).toISOString();
const reason = (code: string): GateReason => ({
  code,
  message: `${code} message`,
  value: null,
  threshold: null,
});
const verdict = (minute: number, codes: readonly string[]): VerdictInput => ({
  id: `governance.verdict:checkout:${t(minute)}`,
  service: "checkout",
  reasons: codes.map(reason),
  evaluatedAt: t(minute),
});

function fold(
  verdicts: readonly VerdictInput[],
  start: ServiceIncidentState = EMPTY_SERVICE_STATE,
) {
  let state = start;
  const events = [];
  let n = 0;
  for (const v of verdicts) {
    const decision = decidePolicyIncident(state, v, () => `INC-P${++n}`);
    state = decision.state;
    events.push(...decision.events);
  }
  return { state, events };
}

describe("structuralViolations", () => {
  it("keeps declaration problems and drops runtime reasons", () => {
    const reasons = ["no-rollback", "burn-rate-high", "canary-required", "freeze-active"].map(
      reason,
    );
    expect(structuralViolations(reasons).map((r) => r.code)).toEqual([
      "no-rollback",
      "canary-required",
    ]);
  });
});

describe("decidePolicyIncident", () => {
  it("opens one P3 policy incident for a structural violation, naming it", () => {
    const { state, events } = fold([
      verdict(0, ["no-rollback"]),
      verdict(1, ["no-rollback", "no-slos"]),
    ]);
    expect(events.map((e) => e.kind)).toEqual(["opened"]);
    expect(state.incident).toMatchObject({
      id: "INC-P1",
      origin: "policy",
      slo: null,
      state: "detected",
      class: "P3",
    });
    expect(state.incident?.transitions[0]?.reason).toBe("policy violation: no-rollback message");
  });

  it("opens nothing for runtime reasons alone", () => {
    const { state, events } = fold([verdict(0, ["burn-rate-high", "freeze-active"])]);
    expect(events).toEqual([]);
    expect(state.incident).toBeNull();
  });

  it("resolves the policy incident it opened once the violations are corrected", () => {
    const { state, events } = fold([verdict(0, ["canary-required"]), verdict(5, ["low-margin"])]);
    expect(events.map((e) => e.kind)).toEqual(["opened", "transitioned"]);
    expect(state.incident).toMatchObject({ state: "resolved", resolvedAt: t(5) });
  });

  it("does not open a second incident while an SLO incident is active, nor resolve it", () => {
    const burning = decideIncident(
      EMPTY_SERVICE_STATE,
      {
        id: "e1",
        service: "checkout",
        slo: "availability",
        objective: 99.9,
        severity: "fast-burn",
        burn: "fast-burn",
        budget: "ok",
        evaluatedAt: t(0),
      },
      { openIncidentOn: ["fast-burn"], resolveAfterMs: 60_000 },
      () => "INC-SLO",
    ).state;
    const { state, events } = fold([verdict(1, ["no-rollback"]), verdict(2, [])], burning);
    expect(events).toEqual([]);
    expect(state.incident).toMatchObject({ id: "INC-SLO", state: "detected", origin: "slo" });
  });

  it("ignores a verdict older than the last one folded in", () => {
    const { state } = fold([verdict(5, [])]);
    const stale = decidePolicyIncident(state, verdict(1, ["no-rollback"]), () => "INC-X");
    expect(stale.changed).toBe(false);
    expect(stale.events).toEqual([]);
  });

  it("converges on the latest verdict whatever the delivery order (property)", () => {
    const codes = fc.subarray(["no-rollback", "no-slos", "canary-required", "low-margin"]);
    fc.assert(
      fc.property(
        fc.array(codes, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
        (reasonSets, keys) => {
          const verdicts = reasonSets.map((set, minute) => verdict(minute, set));
          const shuffled = verdicts
            .map((v, i) => ({ v, key: keys[i] ?? i }))
            .sort((a, b) => a.key - b.key)
            .map(({ v }) => v);
          const ordered = fold(verdicts).state;
          const mixed = fold(shuffled).state;
          // The last verdict's violations are what the state remembers, and at most one
          // incident is ever active.
          expect(mixed.policy).toEqual(ordered.policy);
          const last = verdicts.at(-1)!;
          expect(mixed.policy?.violations).toEqual(
            structuralViolations(last.reasons).map((r) => r.code),
          );
        },
      ),
    );
  });
});
