import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EMPTY_SERVICE_STATE, decideIncident, transitionIncident } from "@safedeploy/core";
import type { EvaluationInput, IncidentPolicy, ServiceIncidentState } from "@safedeploy/core";
import type { Severity } from "@safedeploy/schema";

const policy: IncidentPolicy = {
  openIncidentOn: ["fast-burn", "exhausted"],
  resolveAfterMs: 15 * 60_000,
};
const t = (minute: number) => new Date(Date.UTC(2026, 10, 24, 9, minute)).toISOString();
const evaluation = (
  minute: number,
  severity: Severity,
  slo = "availability",
  objective = 99.9,
): EvaluationInput => ({
  id: `budget.evaluated:${slo}:${minute}`,
  service: "checkout",
  slo,
  objective,
  severity,
  evaluatedAt: t(minute),
});

function fold(
  evaluations: readonly EvaluationInput[],
  start: ServiceIncidentState = EMPTY_SERVICE_STATE,
) {
  let state = start;
  const events = [];
  let n = 0;
  for (const e of evaluations) {
    const decision = decideIncident(state, e, policy, () => `INC-${++n}`);
    state = decision.state;
    events.push(...decision.events);
  }
  return { state, events };
}

describe("decideIncident", () => {
  it("opens one incident on fast-burn and updates it, not duplicates it, while unhealthy", () => {
    const { state, events } = fold([
      evaluation(0, "normal"),
      evaluation(1, "fast-burn"),
      evaluation(2, "fast-burn"),
      evaluation(3, "slow-burn"),
    ]);
    expect(events.map((e) => e.kind)).toEqual(["opened"]);
    expect(state.incident).toMatchObject({
      id: "INC-1",
      state: "detected",
      class: "P1",
      severity: "fast-burn",
      openedAt: t(1),
    });
    expect(state.incident?.transitions).toEqual([
      {
        from: null,
        to: "detected",
        at: t(1),
        actor: "system",
        reason: "availability is fast-burn",
      },
    ]);
  });

  it("does not open on severities outside openIncidentOn", () => {
    expect(
      fold([evaluation(0, "slow-burn"), evaluation(1, "no-data"), evaluation(2, "unknown")]).events,
    ).toEqual([]);
  });

  it("escalates the class when the burn gets worse", () => {
    const { state, events } = fold([evaluation(1, "fast-burn"), evaluation(2, "exhausted")]);
    expect(events.map((e) => e.kind)).toEqual(["opened", "escalated"]);
    expect(state.incident).toMatchObject({ class: "P0", severity: "exhausted" });
  });

  it("ignores evidence older than what it knows", () => {
    const { state } = fold([evaluation(5, "fast-burn")]);
    const older = decideIncident(state, evaluation(4, "normal"), policy, () => "INC-X");
    expect(older).toEqual({ state, events: [], changed: false });
  });

  it("still opens on a late burn no incident covers, without rewinding the SLO's state", () => {
    const { state } = fold([evaluation(5, "normal")]);
    const late = decideIncident(state, evaluation(4, "exhausted"), policy, () => "INC-9");
    expect(late.events.map((e) => e.kind)).toEqual(["opened"]);
    expect(late.state.slos.availability).toEqual({ severity: "normal", at: t(5), objective: 99.9 });
    expect(late.state.incident).toMatchObject({ id: "INC-9", openedAt: t(4), class: "P0" });
  });

  it("resolves a mitigated incident after resolveAfter of normal, and restarts the clock on a relapse", () => {
    const opened = fold([evaluation(0, "fast-burn")]).state;
    const mitigation = transitionIncident(opened.incident!, {
      to: "mitigated",
      initiator: "system",
      actor: "system",
      reason: "rollback executed",
      at: t(2),
    });
    if (!mitigation.ok) throw new Error(mitigation.refusal.message);
    const mitigated: ServiceIncidentState = { ...opened, incident: mitigation.incident };
    const relapse = fold(
      [
        evaluation(3, "normal"),
        evaluation(10, "fast-burn"),
        evaluation(11, "normal"),
        evaluation(20, "normal"),
      ],
      mitigated,
    );
    expect(relapse.state.incident?.state).toBe("mitigated"); // 9 minutes normal since the relapse
    const { state, events } = fold(
      [evaluation(3, "normal"), evaluation(17, "normal"), evaluation(18, "normal")],
      mitigated,
    );
    expect(events.map((e) => e.kind)).toEqual(["transitioned"]);
    expect(state.incident).toMatchObject({ state: "resolved", resolvedAt: t(18) });
    // A new burn after resolution opens a new incident.
    const next = decideIncident(state, evaluation(30, "fast-burn"), policy, () => "INC-2");
    expect(next.events.map((e) => e.kind)).toEqual(["opened"]);
    expect(next.state.incident?.id).toBe("INC-2");
  });

  it("a burst delivered shuffled and duplicated opens at most one incident and converges on the same SLO state", () => {
    const severities: Severity[] = ["normal", "slow-burn", "fast-burn", "exhausted", "no-data"];
    const burst = fc.array(
      fc.record({
        minute: fc.integer({ min: 0, max: 59 }),
        severity: fc.constantFrom(...severities),
        slo: fc.constantFrom("a", "b"),
      }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(burst, fc.infiniteStream(fc.nat()), (items, seeds) => {
        // One evaluation per (slo, minute): the same cause always carries the same verdict.
        const unique = [
          ...new Map(
            items.map((i) => [`${i.slo}:${i.minute}`, evaluation(i.minute, i.severity, i.slo)]),
          ).values(),
        ];
        const delivered = [...unique, ...unique.slice(0, 5)]; // redeliveries
        const iterator = seeds[Symbol.iterator]();
        const shuffled = delivered
          .map((e) => ({ e, k: iterator.next().value as number }))
          .sort((x, y) => x.k - y.k)
          .map((x) => x.e);
        const inOrder = fold(
          [...unique].sort((x, y) => x.evaluatedAt.localeCompare(y.evaluatedAt)),
        );
        const outOfOrder = fold(shuffled);
        expect(outOfOrder.events.filter((e) => e.kind === "opened").length).toBeLessThanOrEqual(1);
        expect(outOfOrder.state.slos).toEqual(inOrder.state.slos);
        expect(outOfOrder.state.incident !== null).toBe(inOrder.state.incident !== null);
      }),
    );
  });
});
