import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { DeadLetter } from "@safedeploy/schema";

/**
 * A message of the DEADLETTER stream as the audit log stored it: its place there, and the dead
 * letter, or `null` with what arrived when it is not one (someone else published there).
 */
export interface StoredDeadLetter {
  readonly seq: number;
  readonly storedAt: string;
  readonly letter: DeadLetter | null;
  readonly unreadable: unknown;
}

interface DeadLetterRow {
  seq: string;
  stored_at: Date;
  payload: unknown;
}

/**
 * Dead letters, newest first, optionally only those from one stream (the stream the message was
 * consumed from); `before` a DEADLETTER sequence pages back from it.
 */
export async function listDeadLetters(
  db: Queryable,
  filter: { readonly stream?: string } = {},
  page: { readonly limit: number; readonly before?: number } = { limit: 50 },
): Promise<StoredDeadLetter[]> {
  const rows = await query<DeadLetterRow>(
    db,
    `SELECT seq, stored_at, payload FROM audit_log
      WHERE stream = 'DEADLETTER'
        AND ($1::text IS NULL OR payload ->> 'stream' = $1)
        AND ($2::bigint IS NULL OR seq < $2)
      ORDER BY seq DESC LIMIT $3`,
    [filter.stream ?? null, page.before ?? null, page.limit],
  );
  return rows.map((row) => {
    const letter = DeadLetter.safeParse(row.payload);
    return {
      seq: Number(row.seq),
      storedAt: row.stored_at.toISOString(),
      letter: letter.success ? letter.data : null,
      unreadable: letter.success ? null : row.payload,
    };
  });
}
