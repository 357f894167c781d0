import { z } from "zod";

const DURATION_UNITS_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
} as const;

type DurationUnit = keyof typeof DURATION_UNITS_MS;

const UNITS_DESCENDING = ["y", "w", "d", "h", "m", "s", "ms"] as const;
const DURATION_PART = /(\d+)(ms|s|m|h|d|w|y)/y;

/**
 * Parses a Prometheus-style duration (`30s`, `5m`, `1h30m`, `30d`) into milliseconds.
 * Returns `undefined` for anything that is not a valid, non-empty duration.
 */
export function parseDuration(text: string): number | undefined {
  // A fleet names a handful of windows and parses them millions of times: remember them.
  if (parsedDurations.has(text)) return parsedDurations.get(text);
  const parsed = parseDurationText(text);
  if (parsedDurations.size >= PARSED_DURATIONS_KEPT) parsedDurations.clear();
  parsedDurations.set(text, parsed);
  return parsed;
}

const PARSED_DURATIONS_KEPT = 1_024;
const parsedDurations = new Map<string, number | undefined>();

function parseDurationText(text: string): number | undefined {
  // Prometheus syntax: one or more `<int><unit>` parts, each unit at most once, largest first.
  if (text === "") return undefined;
  const part = new RegExp(DURATION_PART);
  let total = 0;
  let lastUnitIndex = -1;
  while (part.lastIndex < text.length) {
    const match = part.exec(text);
    if (match === null) return undefined;
    const unit = match[2] as DurationUnit;
    const unitIndex = UNITS_DESCENDING.indexOf(unit);
    if (unitIndex <= lastUnitIndex) return undefined;
    lastUnitIndex = unitIndex;
    total += Number(match[1]) * DURATION_UNITS_MS[unit];
  }
  return total;
}

/** Formats milliseconds as the shortest Prometheus duration that parses back to the same value. */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`not a duration in ms: ${ms}`);
  if (ms === 0) return "0s";
  let rest = ms;
  let text = "";
  for (const unit of UNITS_DESCENDING) {
    const size = DURATION_UNITS_MS[unit];
    const amount = Math.floor(rest / size);
    if (amount > 0) {
      text += `${amount}${unit}`;
      rest -= amount * size;
    }
  }
  return text;
}

/** A positive Prometheus duration string, kept as written; use {@link parseDuration} for its value. */
export const Duration = z.string().refine((text) => (parseDuration(text) ?? 0) > 0, {
  message: "must be a positive duration such as 30s, 5m, 1h or 30d",
});
export type Duration = z.infer<typeof Duration>;

/** A DNS-label-like name: lowercase letters, digits and dashes, as used for services and trains. */
export const ResourceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9-]+$/, { message: "must be lowercase letters, digits and dashes" })
  .refine((name) => !name.startsWith("-") && !name.endsWith("-"), {
    message: "must start and end with a letter or digit",
  });
export type ResourceName = z.infer<typeof ResourceName>;

/** An ISO-8601 timestamp with offset, e.g. `2026-11-24T09:00:00.000Z`. */
export const Timestamp = z.iso.datetime({ offset: true });

/** An http(s) URL: what a person may be sent to or a hook may call (never `javascript:` or `file:`). */
export const HttpUrl = z.url({
  protocol: /^https?$/,
  hostname: z.regexes.hostname,
  message: "must be an http(s) URL",
});
export type Timestamp = z.infer<typeof Timestamp>;
