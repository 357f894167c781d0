import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EMPTY_SERVICE_STATE,
  decideIncident,
  decideIncidentOnEvaluation,
  transitionIncident,
} from "@safedeploy/core";
import type { EvaluationInput, IncidentPolicy, ServiceIncidentState } from "@safedeploy/core";
import type { BudgetStatus, Burn, Severity } from "@safedeploy/schema";

const policy: IncidentPolicy = {
  openIncidentOn: ["fast-burn", "exhausted"],
  resolveAfterMs: 15 * 60_000,
};
const t = (minute: number) => new Date(Date.UTC(2026, 10, 24, 9, minute)).toISOString();
/** An evaluation; a spent budget burns fast unless told, and the budget is spent only then. */
const evaluation = (
  minute: number,
  severity: Severity,
  slo = "availability",
  objective = 99.9,
  burn: Burn = severity === "exhausted" ? "fast-burn" : severity,
): EvaluationInput => ({
  id: `budget.evaluated:${slo}:${minute}`,
  service: "checkout",
  slo,
  objective,
  severity,
  burn,
  budget: severity === "exhausted" ? "exhausted" : "ok",
  evaluatedAt: t(minute),
});
/** A spent budget whose burn stopped: severity exhausted, burn normal. */
const spent = (minute: number, slo = "availability") =>
  evaluation(minute, "exhausted", slo, 99.9, "normal");
const budgetOfSlo = (state: ServiceIncidentState, slo = "availability"): BudgetStatus | null =>
  state.slos[slo]?.budget ?? null;

function fold(
  evaluations: readonly EvaluationInput[],
  start: ServiceIncidentState = EMPTY_SERVICE_STATE,
  under: IncidentPolicy = policy,
) {
  let state = start;
  const events = [];
  let n = 0;
  for (const e of evaluations) {
    const decision = decideIncident(state, e, under, () => `INC-${++n}`);
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
    expect(late.state.slos.availability).toEqual({
      severity: "normal",
      burn: "normal",
      budget: "ok",
      at: t(5),
      objective: 99.9,
      // The late burn at minute 4 came after the normal evaluation of minute 5 started its normal
      // time? No: 4 < 5, so minute 5 still is the first normal evaluation after the burn.
      lastBurnAt: t(4),
      normalSince: t(5),
    });
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

  it("resolves a detected SLO incident once the burn is normal for resolveAfter, though the budget stays spent", () => {
    const { state, events } = fold([
      evaluation(0, "fast-burn"),
      evaluation(1, "exhausted"),
      spent(2),
      spent(10),
      spent(17),
    ]);
    expect(events.map((e) => e.kind)).toEqual(["opened", "escalated", "transitioned"]);
    expect(state.incident).toMatchObject({ state: "resolved", resolvedAt: t(17) });
    expect(budgetOfSlo(state)).toBe("exhausted");
    expect(state.incident?.transitions.at(-1)?.reason).toBe(
      `every SLO's burn normal since ${t(2)}`,
    );
    // The budget stays spent: no new incident for it.
    const after = fold([spent(18), spent(40)], state);
    expect(after.events).toEqual([]);
  });

  it("a person resolving an incident over a spent budget does not reopen it; a new burn does", () => {
    const opened = fold([spent(0)]);
    expect(opened.events.map((e) => e.kind)).toEqual(["opened"]);
    expect(opened.state.incident).toMatchObject({ severity: "exhausted", class: "P0" });
    const resolved = transitionIncident(opened.state.incident!, {
      to: "resolved",
      initiator: "human",
      actor: "ana",
      reason: "rolled back by hand",
      at: t(1),
    });
    if (!resolved.ok) throw new Error(resolved.refusal.message);
    const byPerson: ServiceIncidentState = { ...opened.state, incident: resolved.incident };
    expect(fold([spent(2), spent(3), spent(4)], byPerson).events).toEqual([]);
    const burning = fold([spent(2), evaluation(5, "exhausted")], byPerson);
    expect(burning.events.map((e) => e.kind)).toEqual(["opened"]);
  });

  it("opens when a budget becomes exhausted, even with its burn over", () => {
    const { events } = fold([evaluation(0, "normal"), spent(1)]);
    expect(events).toMatchObject([{ kind: "opened", reason: "availability is exhausted" }]);
  });

  it("a late burn that newer evidence shows over opens and resolves at once, as in order", () => {
    const short: IncidentPolicy = { ...policy, resolveAfterMs: 2 * 60_000 };
    const { events, state } = fold(
      [evaluation(7, "normal"), evaluation(9, "normal"), evaluation(4, "fast-burn")],
      EMPTY_SERVICE_STATE,
      short,
    );
    expect(events.map((e) => e.kind)).toEqual(["opened", "transitioned"]);
    expect(state.incident).toMatchObject({ state: "resolved", openedAt: t(4) });
  });

  it("does not resolve before every declared SLO was heard from", () => {
    const declared: IncidentPolicy = { ...policy, sloNames: ["availability", "latency"] };
    const { state } = fold(
      [evaluation(0, "fast-burn"), evaluation(1, "normal"), evaluation(20, "normal")],
      EMPTY_SERVICE_STATE,
      declared,
    );
    expect(state.incident?.state).toBe("detected");
    // latency is normal from when it was first heard: resolveAfter later, both resolve it.
    const heard = fold(
      [
        evaluation(21, "normal", "latency"),
        evaluation(22, "normal"),
        evaluation(36, "normal", "latency"),
        evaluation(37, "normal"),
      ],
      state,
      declared,
    );
    expect(heard.state.incident?.state).toBe("resolved");
    expect(heard.state.incident?.transitions.at(-1)?.reason).toBe(
      `every SLO's burn normal since ${t(21)}`,
    );
  });

  it("says when the burn began: the first burning evaluation of an unbroken burn", () => {
    const policySlow: IncidentPolicy = { ...policy, openIncidentOn: ["fast-burn"] };
    let state = EMPTY_SERVICE_STATE;
    const events = [];
    for (const e of [
      evaluation(0, "slow-burn"),
      evaluation(1, "normal"),
      evaluation(2, "slow-burn"),
      evaluation(3, "slow-burn"),
      evaluation(4, "fast-burn"),
    ]) {
      const decision = decideIncident(state, e, policySlow, () => "INC-1");
      state = decision.state;
      events.push(...decision.events);
    }
    expect(events).toMatchObject([{ kind: "opened", burnBegan: t(2) }]);
  });

  it("leaves a policy incident to its policy: a normal burn does not resolve it unless mitigated", () => {
    const policyIncident: ServiceIncidentState = {
      ...EMPTY_SERVICE_STATE,
      incident: {
        id: "INC-P",
        service: "checkout",
        origin: "policy",
        slo: null,
        state: "detected",
        severity: "normal",
        class: "P3",
        openedAt: t(0),
        updatedAt: t(0),
        detectedFrom: t(0),
        mitigatedAt: null,
        resolvedAt: null,
        transitions: [],
      },
    };
    const { state } = fold([evaluation(1, "normal"), evaluation(40, "normal")], policyIncident);
    expect(state.incident?.state).toBe("detected");
  });

  it("no sequence of evaluations leaves an SLO incident active after resolveAfter of normal burn (property)", () => {
    const severities: Severity[] = [
      "normal",
      "slow-burn",
      "fast-burn",
      "exhausted",
      "no-data",
      "unknown",
    ];
    const burns: Burn[] = ["normal", "slow-burn", "fast-burn", "no-data", "unknown"];
    const step = fc.record({
      gap: fc.integer({ min: 0, max: 20 }),
      severity: fc.constantFrom(...severities),
      burn: fc.constantFrom(...burns),
      slo: fc.constantFrom("a", "b"),
    });
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom<Severity[]>(
          ["fast-burn", "exhausted"],
          ["slow-burn"],
          ["exhausted"],
          ["fast-burn", "unknown"],
        ),
        (steps, resolveMinutes, openOn) => {
          const incidentPolicy: IncidentPolicy = {
            openIncidentOn: openOn,
            resolveAfterMs: resolveMinutes * 60_000,
          };
          let minute = 0;
          let state = EMPTY_SERVICE_STATE;
          let n = 0;
          const feed = (e: EvaluationInput) => {
            state = decideIncident(state, e, incidentPolicy, () => `INC-${++n}`).state;
          };
          for (const s of steps) {
            minute += s.gap;
            // A spent budget is exhausted whatever the burn; any other severity is the burn.
            const burn = s.severity === "exhausted" ? s.burn : s.severity;
            feed(evaluation(minute, s.severity, s.slo, 99.9, burn));
          }
          // Then every SLO burns normally (budgets possibly spent) for resolveAfter and a bit.
          const known = Object.keys(state.slos);
          for (let extra = 1; extra <= resolveMinutes + 1; extra++) {
            for (const slo of known) {
              const budgetSpent = state.slos[slo]?.budget === "exhausted";
              feed(
                budgetSpent
                  ? evaluation(minute + extra, "exhausted", slo, 99.9, "normal")
                  : evaluation(minute + extra, "normal", slo),
              );
            }
          }
          const incident = state.incident;
          if (incident !== null && incident.origin === "slo") {
            expect(["resolved", "postmortem-complete"]).toContain(incident.state);
          }
        },
      ),
    );
  });

  it("resolves whatever order replicas folded a burn and its recovery in (property)", () => {
    fc.assert(
      fc.property(
        fc.infiniteStream(fc.nat()),
        fc.integer({ min: 1, max: 4 }),
        (seeds, resolveMinutes) => {
          const incidentPolicy: IncidentPolicy = {
            openIncidentOn: ["fast-burn", "exhausted"],
            resolveAfterMs: resolveMinutes * 60_000,
          };
          // Burning for 3 minutes, then normal for resolveAfter and two more minutes.
          const burst = [
            ...[0, 1, 2].map((m) => evaluation(m, "fast-burn")),
            ...Array.from({ length: resolveMinutes + 3 }, (_, i) => evaluation(3 + i, "normal")),
          ];
          const iterator = seeds[Symbol.iterator]();
          // The first burn arrives first (it opens the incident); the rest in any order.
          const [first, ...rest] = burst;
          const shuffled = [
            first!,
            ...rest
              .map((e) => ({ e, k: iterator.next().value as number }))
              .sort((x, y) => x.k - y.k)
              .map((x) => x.e),
          ];
          let state = EMPTY_SERVICE_STATE;
          for (const e of shuffled) {
            state = decideIncident(state, e, incidentPolicy, () => "INC-1").state;
          }
          expect(state.incident?.state).toBe("resolved");
        },
      ),
    );
  });

  it("a burst delivered shuffled and duplicated opens no more incidents than in order and converges on the same SLO state", () => {
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
        const declared: IncidentPolicy = { ...policy, sloNames: ["a", "b"] };
        const inOrder = fold(
          [...unique].sort((x, y) => x.evaluatedAt.localeCompare(y.evaluatedAt)),
          EMPTY_SERVICE_STATE,
          declared,
        );
        const outOfOrder = fold(shuffled, EMPTY_SERVICE_STATE, declared);
        // Incidents resolve by themselves and a new burn opens the next, so a burst may open more
        // than one; shuffled, it never opens more than the same burst in order.
        const openings = (run: typeof inOrder) => run.events.filter((e) => e.kind === "opened");
        expect(openings(outOfOrder).length).toBeLessThanOrEqual(
          Math.max(1, openings(inOrder).length),
        );
        // The evidence each SLO holds is the same; how long it has been normal is kept
        // conservatively (a late burn forgets normal evaluations after it until the next one).
        const evidenceOf = (slos: typeof inOrder.state.slos) =>
          Object.fromEntries(
            Object.entries(slos).map(([slo, { severity, burn, budget, at, objective }]) => [
              slo,
              { severity, burn, budget, at, objective },
            ]),
          );
        expect(evidenceOf(outOfOrder.state.slos)).toEqual(evidenceOf(inOrder.state.slos));
        // Never healthy for longer than in order: resolution cannot come early from reordering.
        const since = (run: typeof inOrder) => run.state.healthySince;
        if (since(outOfOrder) !== null && since(inOrder) !== null) {
          expect(since(outOfOrder)! >= since(inOrder)!).toBe(true);
        }
        expect(outOfOrder.state.incident !== null).toBe(inOrder.state.incident !== null);
      }),
    );
  });
});

describe("decideIncidentOnEvaluation", () => {
  const service = (minute: number, ...slos: EvaluationInput[]) => ({
    id: `budget.evaluated:checkout:${minute}`,
    service: "checkout",
    slos: slos.map((slo) => ({
      slo: slo.slo,
      objective: slo.objective,
      severity: slo.severity,
      burn: slo.burn,
      budget: slo.budget,
      evaluatedAt: slo.evaluatedAt,
    })),
  });

  it("folds a service's SLOs as if each had arrived alone: one incident, escalated by the worse", () => {
    let n = 0;
    const decision = decideIncidentOnEvaluation(
      EMPTY_SERVICE_STATE,
      service(1, evaluation(1, "normal"), evaluation(1, "fast-burn", "latency"), spent(1, "ratio")),
      { ...policy, openIncidentOn: ["fast-burn", "exhausted"] },
      () => `INC-${++n}`,
    );
    const alone = fold([
      { ...evaluation(1, "normal"), id: "budget.evaluated:checkout:1" },
      { ...evaluation(1, "fast-burn", "latency"), id: "budget.evaluated:checkout:1" },
      { ...spent(1, "ratio"), id: "budget.evaluated:checkout:1" },
    ]);
    expect(decision.changed).toBe(true);
    expect(decision.events.map((e) => e.kind)).toEqual(alone.events.map((e) => e.kind));
    expect(decision.events.filter((e) => e.kind === "opened")).toHaveLength(1);
    expect(decision.state).toEqual(alone.state);
    expect(Object.keys(decision.state.slos)).toEqual(["availability", "latency", "ratio"]);
  });

  it("changes nothing when every SLO is older than what is known", () => {
    const known = fold([evaluation(5, "normal"), evaluation(5, "normal", "latency")]).state;
    const late = decideIncidentOnEvaluation(
      known,
      service(5, evaluation(5, "normal"), evaluation(5, "normal", "latency")),
      policy,
      () => "INC-X",
    );
    expect(late.changed).toBe(false);
    expect(late.events).toEqual([]);
  });

  it("equals the SLOs folded one by one, for any evaluations", () => {
    const severities: Severity[] = ["normal", "slow-burn", "fast-burn", "exhausted", "no-data"];
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 30 }),
            fc.constantFrom(...severities),
            fc.constantFrom(...severities),
          ),
          { maxLength: 12 },
        ),
        (rounds) => {
          let together: ServiceIncidentState = EMPTY_SERVICE_STATE;
          let n = 0;
          for (const [minute, a, b] of rounds) {
            together = decideIncidentOnEvaluation(
              together,
              service(minute, evaluation(minute, a), evaluation(minute, b, "latency")),
              policy,
              () => `INC-${++n}`,
            ).state;
          }
          const apart = fold(
            rounds.flatMap(([minute, a, b]) => [
              { ...evaluation(minute, a), id: `budget.evaluated:checkout:${minute}` },
              { ...evaluation(minute, b, "latency"), id: `budget.evaluated:checkout:${minute}` },
            ]),
          ).state;
          expect(together).toEqual(apart);
        },
      ),
    );
  });
});
