import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFreezeWindow, evaluateFreezeWindows, selectsService } from "@safedeploy/core";
import type { RecurringFreezeWindow } from "@safedeploy/core";

const checkout = { name: "checkout", owner: "team-payments" };

const window = (overrides: Partial<RecurringFreezeWindow> = {}): RecurringFreezeWindow => ({
  name: "nightly",
  effect: "deny",
  dtstart: "2026-01-01T09:00:00",
  timeZone: "Europe/Berlin",
  rrule: "FREQ=DAILY",
  duration: "1h",
  services: ["checkout"],
  reason: "batch jobs",
  ...overrides,
});

const evaluate = (windows: RecurringFreezeWindow[], now: string, service = checkout) =>
  evaluateFreezeWindows(windows.map(compileFreezeWindow), service, now);

describe("a deny window", () => {
  it("freezes during an occurrence and names the window and its next opening", () => {
    const state = evaluate([window()], "2026-06-10T07:30:00Z"); // 09:30 CEST
    expect(state.frozen).toBe(true);
    expect(state.reasons[0]?.message).toContain("deny window nightly");
    expect(state.nextOpening).toBe("2026-06-10T08:00:00.000Z");
  });

  it("does not freeze outside its occurrences, nor services it does not select", () => {
    expect(evaluate([window()], "2026-06-10T08:00:00Z").frozen).toBe(false);
    expect(evaluate([window()], "2026-06-10T07:30:00Z", { name: "cart", owner: "x" }).frozen).toBe(
      false,
    );
  });

  it("selects by owner and by *", () => {
    expect(selectsService(window({ services: [], owners: ["team-payments"] }), checkout)).toBe(
      true,
    );
    expect(selectsService(window({ services: ["*"] }), { name: "any", owner: "o" })).toBe(true);
    expect(selectsService(window({ services: ["cart"], owners: ["o"] }), checkout)).toBe(false);
  });

  it("finds the opening after back-to-back occurrences", () => {
    // Two windows chaining 09:00-10:00 and 10:00-11:00: open at 11:00 local.
    const second = window({ name: "second", dtstart: "2026-01-01T10:00:00" });
    const state = evaluate([window(), second], "2026-06-10T07:30:00Z");
    expect(state.nextOpening).toBe("2026-06-10T09:00:00.000Z");
  });
});

describe("allow windows mean only then, and deny wins", () => {
  const business = window({
    name: "business-hours",
    effect: "allow",
    rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    duration: "8h",
    reason: "promote in business hours",
  });

  it("freezes outside every allow window, until the next one opens", () => {
    const saturday = evaluate([business], "2026-06-13T10:00:00Z");
    expect(saturday.frozen).toBe(true);
    expect(saturday.reasons[0]?.effect).toBe("allow");
    expect(saturday.nextOpening).toBe("2026-06-15T07:00:00.000Z"); // Monday 09:00 CEST
    expect(evaluate([business], "2026-06-15T08:00:00Z").frozen).toBe(false);
  });

  it("deny inside an allow window still freezes", () => {
    const lunch = window({ name: "lunch", dtstart: "2026-01-01T12:00:00", duration: "30m" });
    const state = evaluate([business, lunch], "2026-06-15T10:10:00Z"); // Monday 12:10 CEST
    expect(state.frozen).toBe(true);
    expect(state.reasons.map((r) => r.window)).toEqual(["lunch"]);
    expect(state.nextOpening).toBe("2026-06-15T10:30:00.000Z");
  });
});

describe("fails closed", () => {
  it("an unreadable rule freezes, with no next opening", () => {
    const state = evaluate([window({ rrule: "FREQ=SOMETIMES" })], "2026-06-10T12:00:00Z");
    expect(state.frozen).toBe(true);
    expect(state.reasons[0]?.message).toContain("cannot be evaluated");
    expect(state.nextOpening).toBeNull();
  });

  it("an unknown time zone freezes", () => {
    expect(evaluate([window({ timeZone: "Mars/Olympus" })], "2026-06-10T12:00:00Z").frozen).toBe(
      true,
    );
  });
});

describe("overrides", () => {
  it("an override in force lets the service through; an expired one does not", () => {
    const compiled = [compileFreezeWindow(window())];
    const override = {
      id: "o1",
      from: "2026-06-10T07:00:00Z",
      until: "2026-06-10T07:45:00Z",
      actor: "alice",
      reason: "hotfix",
    };
    const during = evaluateFreezeWindows(compiled, checkout, "2026-06-10T07:30:00Z", [override]);
    expect(during.frozen).toBe(false);
    expect(during.override?.id).toBe("o1");
    const after = evaluateFreezeWindows(compiled, checkout, "2026-06-10T07:50:00Z", [override]);
    expect(after.frozen).toBe(true);
  });
});

/** A daily window at `time` local, one hour long, in `zone`. */
const daily = (zone: string, time: string, duration = "1h") =>
  window({ timeZone: zone, dtstart: `2026-01-01T${time}`, duration });

describe("DST: Europe/Berlin 2026 (spring 2026-03-29, autumn 2026-10-25)", () => {
  const zone = "Europe/Berlin";

  it("09:00 local is 08:00Z before the spring change and 07:00Z after it", () => {
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-28T08:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-28T07:30:00Z").frozen).toBe(false);
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-29T07:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-29T08:30:00Z").frozen).toBe(false);
  });

  it("09:00 local is 07:00Z before the autumn change and 08:00Z after it", () => {
    expect(evaluate([daily(zone, "09:00:00")], "2026-10-24T07:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-10-25T08:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-10-25T07:30:00Z").frozen).toBe(false);
  });

  it("a 02:30 occurrence that does not exist on 2026-03-29 is skipped (RFC 5545 §3.3.10)", () => {
    const nightly = daily(zone, "02:30:00");
    expect(evaluate([nightly], "2026-03-28T01:45:00Z").frozen).toBe(true); // 02:45 CET
    expect(evaluate([nightly], "2026-03-29T01:45:00Z").frozen).toBe(false); // 03:45 CEST
    const before = evaluate([nightly], "2026-03-28T01:45:00Z");
    expect(before.nextOpening).toBe("2026-03-28T02:30:00.000Z");
    expect(evaluate([nightly], "2026-03-30T00:45:00Z").frozen).toBe(true); // 02:45 CEST
  });

  it("02:30 on 2026-10-25 happens twice; the first (summer time) one is the occurrence", () => {
    const nightly = daily(zone, "02:30:00");
    expect(evaluate([nightly], "2026-10-25T00:45:00Z").frozen).toBe(true); // 02:45 CEST
    expect(evaluate([nightly], "2026-10-25T01:45:00Z").frozen).toBe(false); // 02:45 CET
  });

  it("a one-day window lasts the calendar day: 23 hours in spring, 25 in autumn", () => {
    const day = daily(zone, "00:00:00", "1d");
    const spring = evaluate([day, { ...day, name: "x" }], "2026-03-29T12:00:00Z");
    expect(spring.frozen).toBe(true);
    // Every day is frozen, so the search finds no opening within its horizon.
    expect(spring.nextOpening).toBeNull();
    const only = window({ ...day, rrule: "FREQ=DAILY;COUNT=1", dtstart: "2026-03-29T00:00:00" });
    expect(evaluate([only], "2026-03-29T12:00:00Z").nextOpening).toBe("2026-03-29T22:00:00.000Z");
    const autumn = window({ ...only, dtstart: "2026-10-25T00:00:00" });
    expect(evaluate([autumn], "2026-10-25T12:00:00Z").nextOpening).toBe("2026-10-25T23:00:00.000Z");
  });
});

describe("DST: America/New_York 2026 (spring 2026-03-08, autumn 2026-11-01)", () => {
  const zone = "America/New_York";

  it("09:00 local is 14:00Z before the spring change and 13:00Z after it", () => {
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-07T14:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-08T13:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-03-08T14:30:00Z").frozen).toBe(false);
  });

  it("09:00 local is 13:00Z before the autumn change and 14:00Z after it", () => {
    expect(evaluate([daily(zone, "09:00:00")], "2026-10-31T13:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-11-01T14:30:00Z").frozen).toBe(true);
    expect(evaluate([daily(zone, "09:00:00")], "2026-11-01T13:30:00Z").frozen).toBe(false);
  });

  it("02:30 on 2026-03-08 is skipped; 01:30 on 2026-11-01 is the first (EDT) one", () => {
    expect(evaluate([daily(zone, "02:30:00")], "2026-03-08T07:45:00Z").frozen).toBe(false);
    expect(evaluate([daily(zone, "01:30:00")], "2026-11-01T05:45:00Z").frozen).toBe(true); // EDT
    expect(evaluate([daily(zone, "01:30:00")], "2026-11-01T06:45:00Z").frozen).toBe(false); // EST
  });
});

describe("properties", () => {
  const instant = fc
    .integer({ min: Date.parse("2026-01-01T00:00:00Z"), max: Date.parse("2027-01-01T00:00:00Z") })
    .map((ms) => new Date(ms).toISOString());
  const anyWindow = fc.record({
    effect: fc.constantFrom("deny" as const, "allow" as const),
    hour: fc.integer({ min: 0, max: 23 }),
    minutes: fc.integer({ min: 1, max: 600 }),
    zone: fc.constantFrom("Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"),
    rrule: fc.constantFrom("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=HOURLY;INTERVAL=7"),
  });
  interface Drawn {
    effect: "deny" | "allow";
    hour: number;
    minutes: number;
    zone: string;
    rrule: string;
  }
  const build = (w: Drawn, i: number) =>
    window({
      name: `w${i}`,
      effect: w.effect,
      dtstart: `2026-01-01T${String(w.hour).padStart(2, "0")}:00:00`,
      timeZone: w.zone,
      rrule: w.rrule,
      duration: `${w.minutes}m`,
    });

  it("the next opening, when found, is not before now and is open", () => {
    fc.assert(
      fc.property(fc.array(anyWindow, { minLength: 1, maxLength: 3 }), instant, (ws, now) => {
        const windows = ws.map(build);
        const state = evaluate(windows, now);
        if (!state.frozen) {
          expect(state.nextOpening).toBe(now);
          return;
        }
        if (state.nextOpening === null) return;
        expect(Date.parse(state.nextOpening)).toBeGreaterThan(Date.parse(now));
        expect(evaluate(windows, state.nextOpening).frozen).toBe(false);
        // Nothing opens in between: one minute before the opening it is still frozen.
        const before = new Date(Date.parse(state.nextOpening) - 60_000).toISOString();
        if (Date.parse(before) >= Date.parse(now))
          expect(evaluate(windows, before).frozen).toBe(true);
      }),
      { numRuns: 80 },
    );
  }, 60_000);

  it("deny wins: adding a deny window never unfreezes, adding an allow never freezes a deny", () => {
    fc.assert(
      fc.property(fc.array(anyWindow, { maxLength: 3 }), anyWindow, instant, (ws, extra, now) => {
        const windows = ws.map(build);
        const more = [...windows, build({ ...extra, effect: "deny" }, 9)];
        if (evaluate(windows, now).frozen) expect(evaluate(more, now).frozen).toBe(true);
        const denies = windows.filter((w) => w.effect === "deny");
        const withAllow = [...denies, build({ ...extra, effect: "allow" }, 9)];
        if (evaluate(denies, now).frozen) expect(evaluate(withAllow, now).frozen).toBe(true);
      }),
      { numRuns: 80 },
    );
  }, 60_000);
});
