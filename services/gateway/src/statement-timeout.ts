/** How long one gateway query may run before PostgreSQL cancels it, when not configured. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;

/**
 * `url` with a `statement_timeout` of `ms`, which `pg` sends in the startup message, so every
 * connection of the pool has it from its first query: a query that runs longer (a slow plan, a
 * lock held elsewhere) is cancelled by PostgreSQL and answered 503, instead of holding a pool
 * slot and the request. A timeout already in the URL is kept. Null when `url` is not a URL.
 */
export function withStatementTimeout(url: string, ms: number): string | null {
  if (!Number.isInteger(ms) || ms <= 0) throw new RangeError(`not a statement timeout: ${ms}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (!parsed.searchParams.has("statement_timeout")) {
    parsed.searchParams.set("statement_timeout", String(ms));
  }
  return parsed.toString();
}
