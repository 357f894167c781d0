import type { AuditPool } from "@safedeploy/audit";
import { query } from "@safedeploy/db";
import { STREAMS } from "@safedeploy/schema";

/**
 * What the chain check depends on, read cheaply: each stream's newest position and hash, and
 * PostgreSQL's count of rows updated or deleted in the log (an edit of an old row leaves the
 * heads as they were). Equal heads, the same answer.
 */
export async function chainHead(pool: AuditPool): Promise<string> {
  const [row] = await query<{ head: string | null }>(
    pool,
    `SELECT (SELECT string_agg(s.stream || ':' || coalesce(h.position::text, '0') || ':' ||
                  coalesce(h.hash, ''), ',' ORDER BY s.stream)
             FROM unnest($1::text[]) AS s(stream)
             LEFT JOIN LATERAL (SELECT a.position, a.hash FROM audit_log a
                                WHERE a.stream = s.stream ORDER BY a.position DESC LIMIT 1) h
               ON true)
       || '|' || coalesce((SELECT (n_tup_upd + n_tup_del)::text FROM pg_stat_user_tables
                           WHERE relid = 'audit_log'::regclass), '') AS head`,
    [[...STREAMS]],
  );
  return row?.head ?? "";
}

export interface VerifyCacheOptions<I, R> {
  /** The chain head for a check with `input` (which is part of what the outcome depends on). */
  readonly head: (input: I) => Promise<string>;
  /** The full check: rehashes the whole log. */
  readonly verify: (input: I) => Promise<R>;
  readonly now: () => Date;
  /**
   * How long an outcome is reused for an unchanged head: PostgreSQL's update counters are
   * flushed lazily, so an edit is caught at the latest after this long.
   */
  readonly maxAgeMs: number;
}

/** One outcome of the check, with when it was computed and whether this answer reused it. */
export interface VerifiedChain<R> {
  readonly report: R;
  readonly checkedAt: string;
  readonly cached: boolean;
}

/**
 * `/v1/audit/verify` without rehashing the log per request: the check runs once per chain head and
 * one at a time, requests that arrive while it runs share it (whatever head they saw), and later
 * ones with the same head get its outcome.
 * A new row (a new head) or `maxAgeMs` makes the next request check again.
 */
export function verifyCache<I, R>(
  options: VerifyCacheOptions<I, R>,
): {
  get(input: I): Promise<VerifiedChain<R>>;
} {
  let done: { head: string; report: R; checkedAt: Date } | null = null;
  let running: { head: string; result: Promise<VerifiedChain<R>> } | null = null;

  const fresh = (head: string) =>
    done !== null &&
    done.head === head &&
    options.now().getTime() - done.checkedAt.getTime() < options.maxAgeMs;

  const run = (head: string, input: I): Promise<VerifiedChain<R>> => {
    const checkedAt = options.now();
    const result = options.verify(input).then((report) => {
      done = { head, report, checkedAt };
      return { report, checkedAt: checkedAt.toISOString(), cached: false };
    });
    const entry = { head, result };
    running = entry;
    void result
      .finally(() => {
        if (running === entry) running = null;
      })
      .catch(() => undefined);
    return result;
  };

  return {
    async get(input) {
      const head = await options.head(input);
      if (fresh(head) && done !== null) {
        return { report: done.report, checkedAt: done.checkedAt.toISOString(), cached: true };
      }
      // At most one full check at a time: under steady ingest every request sees a new head, and
      // one rehash each would be a denial of service. Its answer holds as of its `checkedAt`.
      if (running !== null) return running.result;
      return run(head, input);
    },
  };
}
