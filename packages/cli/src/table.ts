// Plain-text tables and budget bars for the commands that print the control plane's state.

/** One cell: text, or nothing (printed as "-"). */
export type Cell = string | number | null | undefined;

const text = (cell: Cell): string => (cell === null || cell === undefined ? "-" : String(cell));

const width = (value: string): number => value.length;

/**
 * A table with a header row, columns padded to their widest cell and separated by two spaces;
 * the last column is not padded. An empty table prints `empty` instead.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  empty = "(none)",
): string {
  if (rows.length === 0) return `${empty}\n`;
  const cells = [headers, ...rows.map((row) => row.map(text))];
  const widths = headers.map((_, column) =>
    Math.max(...cells.map((row) => width(row[column] ?? ""))),
  );
  return cells
    .map((row) =>
      row
        .map((cell, column) =>
          column === row.length - 1 ? cell : cell + " ".repeat((widths[column] ?? 0) - width(cell)),
        )
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/**
 * A budget bar: the fraction of the error budget left (1 = untouched, 0 or less = spent) as
 * `[######--------]  42%`; `null` (never evaluated) as `[   no data    ]`.
 */
export function budgetBar(remaining: number | null, size = 20): string {
  if (remaining === null || !Number.isFinite(remaining)) {
    const label = "no data";
    const left = Math.floor((size - label.length) / 2);
    return `[${" ".repeat(left)}${label}${" ".repeat(size - label.length - left)}]`;
  }
  const clamped = Math.min(1, Math.max(0, remaining));
  const filled = Math.round(clamped * size);
  const percent = `${Math.round(remaining * 100)}%`.padStart(5);
  return `[${"#".repeat(filled)}${"-".repeat(size - filled)}]${percent}`;
}

/** An ISO timestamp as `2026-01-02 03:04:05Z` (seconds, UTC), or the text itself. */
export function shortTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return "-";
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
  return match === null ? iso : `${match[1] ?? ""} ${match[2] ?? ""}Z`;
}
