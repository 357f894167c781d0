import { RRuleTemporal } from "rrule-temporal";
import { Temporal } from "temporal-polyfill";
import type { FreezeWindowDocument } from "@safedeploy/schema";

/** A recurring freeze window as the catalog declares it (`kind: FreezeWindow`). */
export interface RecurringFreezeWindow {
  readonly name: string;
  readonly effect: "deny" | "allow";
  /** Local wall time of the first occurrence, e.g. `2026-01-02T18:00:00`. */
  readonly dtstart: string;
  readonly timeZone: string;
  readonly rrule: string;
  /** Prometheus duration; `d` and `w` are calendar days in the time zone, the rest exact time. */
  readonly duration: string;
  readonly services?: readonly string[] | undefined;
  readonly owners?: readonly string[] | undefined;
  readonly reason: string;
}

/** An admin's emergency override: recurring windows do not freeze the service until `until`. */
export interface FreezeOverride {
  readonly id: string;
  readonly from: string;
  readonly until: string;
  readonly actor: string;
  readonly reason: string;
}

/** Why a service is frozen by its recurring windows. */
export interface FreezeWindowReason {
  readonly window: string;
  /** `deny`: inside a deny occurrence; `allow`: outside every allow occurrence. */
  readonly effect: "deny" | "allow";
  readonly message: string;
}

/** What the recurring windows say about one service at one instant. */
export interface FreezeWindowState {
  readonly frozen: boolean;
  readonly reasons: readonly FreezeWindowReason[];
  /** The first instant at or after `now` at which the windows let it through; null: none found. */
  readonly nextOpening: string | null;
  /** The override in force, if one lets the service through despite its windows. */
  readonly override: FreezeOverride | null;
}

/** How far ahead {@link evaluateFreezeWindows} looks for the next opening. */
export const NEXT_OPENING_HORIZON_DAYS = 400;
const MAX_STEPS = 2_000;

/** A window with its rule compiled, or the reason it cannot be. */
export type CompiledFreezeWindow =
  | {
      readonly window: RecurringFreezeWindow;
      readonly ok: true;
      readonly rule: RRuleTemporal;
      readonly span: Temporal.Duration;
      readonly maxSpanMs: number;
    }
  | { readonly window: RecurringFreezeWindow; readonly ok: false; readonly error: string };

const DURATION_PART = /(\d+)(ms|s|m|h|d|w|y)/gy;

/** Days and weeks as calendar units (a day is 23 or 25 hours across DST); the rest exact. */
function spanOf(duration: string): Temporal.Duration | undefined {
  const fields = { years: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 0, milliseconds: 0 };
  const names = {
    y: "years",
    w: "weeks",
    d: "days",
    h: "hours",
    m: "minutes",
    s: "seconds",
    ms: "milliseconds",
  } as const;
  DURATION_PART.lastIndex = 0;
  let consumed = 0;
  for (const match of duration.matchAll(DURATION_PART)) {
    fields[names[match[2] as keyof typeof names]] += Number(match[1]);
    consumed += match[0].length;
  }
  if (consumed !== duration.length || consumed === 0) return undefined;
  const span = Temporal.Duration.from(fields);
  return span.sign > 0 ? span : undefined;
}

/** The `FreezeWindow` document as the evaluation takes it. */
export function freezeWindowOf(document: FreezeWindowDocument): RecurringFreezeWindow {
  return { name: document.metadata.name, ...document.spec };
}

/** Compiles a window's rule once (the policy keeps it); never throws, reports what is wrong. */
export function compileFreezeWindow(window: RecurringFreezeWindow): CompiledFreezeWindow {
  const span = spanOf(window.duration);
  if (span === undefined)
    return { window, ok: false, error: `duration ${window.duration} is not a positive duration` };
  try {
    const dtstart = Temporal.PlainDateTime.from(window.dtstart).toZonedDateTime(window.timeZone);
    const rule = new RRuleTemporal({
      rruleString: window.rrule.trim().replace(/^RRULE:/i, ""),
      dtstart,
    });
    // Years have 366 days at most; the longest a span can take in exact time, with a DST hour.
    const maxSpanMs =
      span.years * 366 * 86_400_000 +
      (span.weeks * 7 + span.days) * 90_000_000 +
      span.hours * 3_600_000 +
      span.minutes * 60_000 +
      span.seconds * 1_000 +
      span.milliseconds;
    return { window, ok: true, rule, span, maxSpanMs };
  } catch (error) {
    return { window, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Whether the window names the service, by name, `*` or owner. */
export function selectsService(
  window: RecurringFreezeWindow,
  service: { readonly name: string; readonly owner: string },
): boolean {
  return (
    (window.services ?? []).some((s) => s === "*" || s === service.name) ||
    (window.owners ?? []).includes(service.owner)
  );
}

type Compiled = Extract<CompiledFreezeWindow, { ok: true }>;

/** The occurrence of the window covering `at` (start ≤ at < end), if any. */
function occurrenceAt(compiled: Compiled, at: number): { start: number; end: number } | undefined {
  const starts = compiled.rule.between(new Date(at - compiled.maxSpanMs), new Date(at), true);
  for (let i = starts.length - 1; i >= 0; i--) {
    const start = starts[i];
    if (start === undefined) continue;
    const end = start.add(compiled.span).epochMilliseconds;
    if (start.epochMilliseconds <= at && at < end) return { start: start.epochMilliseconds, end };
  }
  return undefined;
}

/** The first occurrence start strictly after `at`, if any. */
function nextStart(compiled: Compiled, at: number): number | undefined {
  const next = compiled.rule.next(new Date(at), false);
  return next === null ? undefined : next.epochMilliseconds;
}

interface Moment {
  readonly frozen: boolean;
  readonly reasons: FreezeWindowReason[];
  /** When the state may next turn open: the earliest end of a deny, or start of an allow. */
  readonly change: number | undefined;
}

const local = (ms: number, zone: string) =>
  Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(zone).toPlainDateTime().toString();

function momentAt(windows: readonly CompiledFreezeWindow[], at: number): Moment {
  const reasons: FreezeWindowReason[] = [];
  const changes: number[] = [];
  const allows = windows.filter((w) => w.window.effect === "allow");
  let insideAllow = allows.length === 0;
  for (const compiled of windows) {
    const { window } = compiled;
    if (!compiled.ok) {
      // Fail closed: a rule that cannot be read never reads as open.
      reasons.push({
        window: window.name,
        effect: window.effect,
        message: `freeze window ${window.name} cannot be evaluated (${compiled.error}): frozen until it is fixed`,
      });
      continue;
    }
    const occurrence = occurrenceAt(compiled, at);
    if (window.effect === "deny" && occurrence !== undefined) {
      reasons.push({
        window: window.name,
        effect: "deny",
        message: `deny window ${window.name} (${local(occurrence.start, window.timeZone)} to ${local(occurrence.end, window.timeZone)} ${window.timeZone}): ${window.reason}`,
      });
      changes.push(occurrence.end);
    }
    if (window.effect === "allow") {
      if (occurrence !== undefined) insideAllow = true;
      else {
        const start = nextStart(compiled, at);
        if (start !== undefined) changes.push(start);
      }
    }
  }
  if (!insideAllow) {
    const names = allows.map((w) => w.window.name).join(", ");
    reasons.push({
      window: names,
      effect: "allow",
      message: `outside every allow window (${names}): promotions only inside them`,
    });
  }
  const broken = windows.some((w) => !w.ok);
  return {
    frozen: reasons.length > 0,
    reasons,
    change: broken ? undefined : changes.length === 0 ? undefined : Math.min(...changes),
  };
}

/**
 * Is the service frozen by its recurring windows at `now`? Deny occurrences freeze; when any allow
 * window selects the service, it is frozen outside all of them; deny wins over allow. An override
 * in force lets it through. `nextOpening` is the first instant the windows let it through (searched
 * {@link NEXT_OPENING_HORIZON_DAYS} ahead). Pure: windows compiled by {@link compileFreezeWindow}.
 */
export function evaluateFreezeWindows(
  compiled: readonly CompiledFreezeWindow[],
  service: { readonly name: string; readonly owner: string },
  now: string,
  overrides: readonly FreezeOverride[] = [],
): FreezeWindowState {
  const at = Date.parse(now);
  const selected = compiled.filter((c) => selectsService(c.window, service));
  const override =
    overrides.find((o) => Date.parse(o.from) <= at && at < Date.parse(o.until)) ?? null;
  const first = momentAt(selected, at);
  if (!first.frozen) return { frozen: false, reasons: [], nextOpening: now, override: null };
  if (override !== null)
    return { frozen: false, reasons: first.reasons, nextOpening: now, override };
  const horizon = at + NEXT_OPENING_HORIZON_DAYS * 86_400_000;
  let moment = first;
  for (
    let step = 0;
    step < MAX_STEPS && moment.change !== undefined && moment.change <= horizon;
    step++
  ) {
    const next = moment.change;
    moment = momentAt(selected, next);
    if (!moment.frozen)
      return {
        frozen: true,
        reasons: first.reasons,
        nextOpening: new Date(next).toISOString(),
        override: null,
      };
  }
  return { frozen: true, reasons: first.reasons, nextOpening: null, override: null };
}
