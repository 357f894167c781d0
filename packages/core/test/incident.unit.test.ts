import { describe, expect, it } from "vitest";
import {
  INCIDENT_TRANSITIONS,
  incidentClass,
  incidentTimings,
  isActive,
  isWorseClass,
  transitionIncident,
} from "@safedeploy/core";
import type { Incident, Initiator } from "@safedeploy/core";
import { IncidentState } from "@safedeploy/schema";

const states = IncidentState.options;
const initiators: Initiator[] = ["system", "human"];

function incident(state: Incident["state"]): Incident {
  return {
    id: "INC-1",
    service: "checkout",
    slo: "availability",
    state,
    severity: "fast-burn",
    class: "P1",
    openedAt: "2026-11-24T09:01:00.000Z",
    updatedAt: "2026-11-24T09:01:00.000Z",
    detectedFrom: "2026-11-24T09:00:30.000Z",
    origin: "slo",
    mitigatedAt: null,
    resolvedAt: null,
    transitions: [],
  };
}

/** The lifecycle as the issue states it, written out independently of the table under test. */
const LEGAL: Record<string, Initiator[]> = {
  "detected→investigating": ["human"],
  "detected→mitigated": ["system", "human"],
  "detected→resolved": ["system", "human"],
  "investigating→mitigated": ["system", "human"],
  "investigating→resolved": ["system", "human"],
  "mitigated→investigating": ["human"],
  "mitigated→resolved": ["system", "human"],
  "resolved→postmortem-complete": ["human"],
};

describe("incident transitions", () => {
  const cases = states.flatMap((from) =>
    states.flatMap((to) => initiators.map((initiator) => [from, to, initiator] as const)),
  );

  it.each(cases)("%s → %s by %s", (from, to, initiator) => {
    const result = transitionIncident(incident(from), {
      to,
      initiator,
      actor: initiator === "system" ? "system" : "ana",
      reason: "test",
      at: "2026-11-24T09:05:00.000Z",
      link: "https://wiki.example/pm/1",
    });
    const legal = LEGAL[`${from}→${to}`]?.includes(initiator) ?? false;
    expect(result.ok).toBe(legal);
    if (!result.ok) {
      expect(result.refusal.code).toBe(
        LEGAL[`${from}→${to}`] === undefined ? "illegal-transition" : "not-allowed-for-initiator",
      );
    }
  });

  it("agrees with the table it is driven by", () => {
    const fromTable = Object.fromEntries(
      Object.entries(INCIDENT_TRANSITIONS).flatMap(([from, tos]) =>
        Object.entries(tos).map(([to, who]) => [`${from}→${to}`, [...who]]),
      ),
    );
    expect(fromTable).toEqual(LEGAL);
  });

  it("records who, when, why, and the mitigation and resolution times", () => {
    const mitigated = transitionIncident(incident("detected"), {
      to: "mitigated",
      initiator: "system",
      actor: "system",
      reason: "rollback PRP-1 executed",
      at: "2026-11-24T09:10:00.000Z",
    });
    if (!mitigated.ok) throw new Error(mitigated.refusal.message);
    const resolved = transitionIncident(mitigated.incident, {
      to: "resolved",
      initiator: "system",
      actor: "system",
      reason: "normal for 15m",
      at: "2026-11-24T09:25:00.000Z",
    });
    if (!resolved.ok) throw new Error(resolved.refusal.message);
    expect(resolved.incident).toMatchObject({
      state: "resolved",
      mitigatedAt: "2026-11-24T09:10:00.000Z",
      resolvedAt: "2026-11-24T09:25:00.000Z",
      updatedAt: "2026-11-24T09:25:00.000Z",
    });
    expect(resolved.incident.transitions.map((t) => [t.from, t.to, t.actor])).toEqual([
      ["detected", "mitigated", "system"],
      ["mitigated", "resolved", "system"],
    ]);
    expect(incidentTimings(resolved.incident)).toEqual({ ttdMs: 30_000, ttrMs: 24 * 60_000 });
    expect(incidentTimings(incident("detected")).ttrMs).toBeNull();
  });

  it("needs a link to complete the postmortem", () => {
    const result = transitionIncident(incident("resolved"), {
      to: "postmortem-complete",
      initiator: "human",
      actor: "ana",
      reason: "written",
      at: "2026-11-24T10:00:00.000Z",
    });
    expect(result).toMatchObject({ ok: false, refusal: { code: "link-required" } });
  });

  it("knows which states are active", () => {
    expect(states.filter(isActive)).toEqual(["detected", "investigating", "mitigated"]);
  });
});

describe("incident class", () => {
  it("follows the burn severity and the SLO's strictness", () => {
    expect(incidentClass("exhausted", 99)).toBe("P0");
    expect(incidentClass("fast-burn", 99.99)).toBe("P0");
    expect(incidentClass("fast-burn", 99.9)).toBe("P1");
    expect(incidentClass("slow-burn", 99.9)).toBe("P2");
    expect(incidentClass("normal", 99.9)).toBe("P3");
    expect(incidentClass("no-data", 99.9)).toBe("P3");
    expect(isWorseClass("P0", "P1")).toBe(true);
    expect(isWorseClass("P2", "P1")).toBe(false);
    expect(isWorseClass("P1", "P1")).toBe(false);
  });
});
