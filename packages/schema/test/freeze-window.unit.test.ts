import { describe, expect, it } from "vitest";
import { FreezeWindowDocument, rruleProblem } from "@safedeploy/schema";

const doc = (spec: Record<string, unknown>) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "FreezeWindow",
  metadata: { name: "weekend" },
  spec: {
    effect: "deny",
    dtstart: "2026-01-02T18:00:00",
    timeZone: "Europe/Berlin",
    rrule: "FREQ=WEEKLY;BYDAY=FR",
    duration: "62h",
    services: ["checkout"],
    reason: "weekend",
    ...spec,
  },
});

const problems = (spec: Record<string, unknown>) => {
  const parsed = FreezeWindowDocument.safeParse(doc(spec));
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("FreezeWindowDocument", () => {
  it("accepts a weekly deny window, and RRULE: prefixed rules", () => {
    expect(problems({})).toEqual([]);
    expect(problems({ rrule: "RRULE:FREQ=DAILY;INTERVAL=2", owners: ["team-a"] })).toEqual([]);
  });

  it("names each wrong field", () => {
    expect(problems({ timeZone: "Mars/Olympus" })).toEqual([
      "spec.timeZone: must be an IANA time zone like Europe/Berlin",
    ]);
    expect(problems({ dtstart: "2026-01-02T18:00:00Z" })[0]).toMatch(/^spec\.dtstart: .*no offset/);
    expect(problems({ effect: "maybe" })).toEqual(["spec.effect: must be deny or allow"]);
    expect(problems({ services: [], owners: [] })).toEqual([
      "spec.services: needs services or owners to select what it freezes",
    ]);
    expect(problems({ duration: "soon" })[0]).toMatch(/^spec\.duration: /);
  });

  it("checks the RRULE's structure", () => {
    expect(rruleProblem("FREQ=WEEKLY;BYDAY=MO,1FR")).toBeUndefined();
    expect(rruleProblem("BYDAY=MO")).toBe("needs FREQ");
    expect(rruleProblem("FREQ=SOMETIMES")).toMatch(/^FREQ must be one of/);
    expect(rruleProblem("FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z")).toMatch(/exclude/);
    expect(rruleProblem("FREQ=DAILY;FOO=1")).toBe("unknown part FOO");
    expect(rruleProblem("FREQ=DAILY;BYDAY=XX")).toMatch(/^BYDAY/);
    expect(rruleProblem("FREQ=DAILY;INTERVAL=0")).toMatch(/positive integer/);
    expect(rruleProblem("FREQ=YEARLY;BYMONTH=13")).toMatch(
      /^BYMONTH must list integers in 1\.\.12/,
    );
    expect(rruleProblem("FREQ=MONTHLY;BYMONTHDAY=-1,15")).toBeUndefined();
    expect(rruleProblem("FREQ=MONTHLY;BYMONTHDAY=0")).toMatch(/^BYMONTHDAY/);
    expect(rruleProblem("FREQ=DAILY;BYHOUR=24")).toMatch(/^BYHOUR/);
    expect(rruleProblem("FREQ=WEEKLY;WKST=XX")).toBe("WKST must be a weekday");
    expect(rruleProblem("FREQ=DAILY;UNTIL=20271231T230000Z")).toBeUndefined();
    expect(rruleProblem("FREQ=DAILY;UNTIL=tomorrow")).toMatch(/^UNTIL/);
  });
});
