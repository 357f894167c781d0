import type { AuditPool } from "@safedeploy/audit";
import { query } from "@safedeploy/db";
import { STREAMS } from "@safedeploy/schema";
import { z } from "zod";

/**
 * Where a reader of the audit log stands: the last chain position read per stream. Positions are
 * assigned per stream under a lock and commit in order, so "after position n" never skips a row
 * that commits later.
 */
export type FeedCursor = Readonly<Record<string, number>>;

/** One stored message of the log, with the cursor that resumes right after it. */
export interface FeedEntry {
  readonly stream: string;
  readonly position: number;
  readonly type: string | null;
  readonly payload: unknown;
  readonly cursor: string;
}

const CursorText = z
  .record(z.string().max(100), z.number().int().min(0))
  .refine((value) => Object.keys(value).length <= 32, { message: "too many streams" });

/** An opaque text form of a cursor (the `id:` of an SSE event). */
export function encodeFeedCursor(cursor: FeedCursor): string {
  return Buffer.from(JSON.stringify(cursor), "utf8").toString("base64url");
}

/** The cursor inside `text`, or null when it is not one this gateway wrote. */
export function decodeFeedCursor(text: string): FeedCursor | null {
  try {
    const parsed = CursorText.safeParse(
      JSON.parse(Buffer.from(text, "base64url").toString("utf8")),
    );
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function streamsOf(cursor: FeedCursor): string[] {
  return [...new Set([...STREAMS, ...Object.keys(cursor)])];
}

/** The cursor at the current end of every stream: a reader starting here sees only new messages. */
export async function feedHeads(pool: AuditPool): Promise<FeedCursor> {
  const rows = await query<{ stream: string; head: string }>(
    pool,
    `SELECT c.stream,
       COALESCE((SELECT max(a.position) FROM audit_log a WHERE a.stream = c.stream), 0) AS head
     FROM unnest($1::text[]) AS c(stream)`,
    [STREAMS],
  );
  return Object.fromEntries(rows.map((row) => [row.stream, Number(row.head)]));
}

interface LogRow {
  stream: string;
  position: string;
  type: string | null;
  payload: unknown;
  stored_at: Date;
}

/**
 * Up to `limit` messages per stream stored after `cursor`, merged in the order they were stored
 * (each stream's own order kept), each with the cursor after it.
 */
export async function readFeed(
  pool: AuditPool,
  cursor: FeedCursor,
  limit: number,
): Promise<{ entries: FeedEntry[]; cursor: FeedCursor; full: boolean }> {
  const streams = streamsOf(cursor);
  const rows = await query<LogRow>(
    pool,
    `SELECT l.stream, l.position, l.type, l.payload, l.stored_at
     FROM unnest($1::text[], $2::bigint[]) AS c(stream, after)
     CROSS JOIN LATERAL (
       SELECT a.stream, a.position, a.type, a.payload, a.stored_at FROM audit_log a
       WHERE a.stream = c.stream AND a.position > c.after ORDER BY a.position LIMIT $3
     ) l`,
    [streams, streams.map((s) => cursor[s] ?? 0), limit],
  );
  const queues = new Map<string, LogRow[]>();
  for (const row of rows) {
    const queue = queues.get(row.stream) ?? [];
    queue.push(row);
    queues.set(row.stream, queue);
  }
  for (const queue of queues.values())
    queue.sort((a, b) => Number(a.position) - Number(b.position));
  const full = [...queues.values()].some((queue) => queue.length >= limit);
  const state: Record<string, number> = { ...cursor };
  const entries: FeedEntry[] = [];
  for (;;) {
    let next: LogRow | undefined;
    for (const queue of queues.values()) {
      const head = queue[0];
      if (head === undefined) continue;
      if (
        next === undefined ||
        head.stored_at.getTime() < next.stored_at.getTime() ||
        (head.stored_at.getTime() === next.stored_at.getTime() && head.stream < next.stream)
      ) {
        next = head;
      }
    }
    if (next === undefined) break;
    queues.get(next.stream)?.shift();
    state[next.stream] = Number(next.position);
    entries.push({
      stream: next.stream,
      position: Number(next.position),
      type: next.type,
      payload: next.payload,
      cursor: encodeFeedCursor(state),
    });
  }
  return { entries, cursor: state, full };
}
