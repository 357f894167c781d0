import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { GENESIS_HASH, chainHash, derivedColumns } from "./chain.js";
import type { ChainedFields, HashVersion } from "./chain.js";

/** The first row of the audit log that breaks its chain, and how. */
export interface BadRow {
  readonly stream: string;
  readonly seq: number;
  readonly position: number;
  /**
   * `edited`: the row's content (or hash) no longer matches what was chained; `missing`: rows
   * before it were removed; `reordered`: it was chained at another position than it now holds;
   * `truncated`: the stream's newest rows are gone (`seq` is the newest one its anchor vouches for).
   */
  readonly problem: "edited" | "missing" | "reordered" | "truncated";
  readonly detail: string;
}

/**
 * What an outside witness says a stream's log must hold: every message up to `storedThrough`
 * (the audit consumer's acknowledged floor in JetStream: the audit service acks a batch only
 * once it committed it, so each of those messages was stored) and, when `head` is given, the row
 * at `head.position` with `head.hash` (the chain head the audit service anchored in JetStream KV
 * after a committed batch): a rewrite of the stream with recomputed hashes no longer ends there.
 */
export interface StreamAnchor {
  readonly stream: string;
  readonly storedThrough: number;
  readonly head?: {
    readonly position: number;
    readonly seq: number;
    readonly hash: string;
  };
}

/**
 * The outcome of {@link verifyChain}: `rows` is how many rows were checked; `anchored`, the
 * streams checked against an anchor: their tail against the acknowledged floor (a chain alone
 * cannot show its newest rows were cut off) and, where the anchor has a head, the row there
 * against the anchored hash (a chain alone cannot show it was rewritten with recomputed hashes).
 */
export interface ChainReport {
  readonly intact: boolean;
  readonly rows: number;
  readonly firstBad: BadRow | null;
  readonly anchored: string[];
}

interface LogRow {
  stream: string;
  seq: string;
  position: string;
  subject: string;
  message_id: string | null;
  type: string | null;
  service: string | null;
  headers: unknown;
  payload: unknown;
  stored_at: Date;
  prev_hash: string;
  hash: string;
  hash_version: number;
}

const PAGE = 5_000;
/** How many candidate positions to try when telling a moved row from an edited one. */
const SEARCH_LIMIT = 2_000_000;

function fieldsOf(row: LogRow, position: number): ChainedFields {
  return {
    stream: row.stream,
    seq: Number(row.seq),
    position,
    subject: row.subject,
    messageId: row.message_id,
    type: row.type,
    service: row.service,
    headers: row.headers,
    payload: row.payload,
    storedAt: row.stored_at.toISOString(),
    hashVersion: row.hash_version as HashVersion,
  };
}

/**
 * Why a row's hash version cannot be trusted, if it cannot: an unknown version, a version older
 * than an earlier row's (a downgrade to a hash that covers less), or a version 1 row whose `type`
 * or `service` (which that hash leaves out) differ from what its payload and subject give.
 */
function versionProblem(row: LogRow, previous: LogRow | undefined): string | undefined {
  if (row.hash_version !== 1 && row.hash_version !== 2) {
    return `its hash version ${row.hash_version} is unknown`;
  }
  if (previous !== undefined && row.hash_version < previous.hash_version) {
    return `its hash version ${row.hash_version} is older than the previous row's (${previous.hash_version})`;
  }
  if (row.hash_version === 1) {
    const derived = derivedColumns(row.payload, row.subject);
    if (derived.type !== row.type) return "its type no longer matches its payload";
    if (derived.service !== row.service) return "its service no longer matches its payload";
  }
  return undefined;
}

async function positionOfHash(db: Queryable, stream: string, hash: string) {
  const [row] = await query<{ position: string }>(
    db,
    "SELECT position FROM audit_log WHERE stream = $1 AND hash = $2 LIMIT 1",
    [stream, hash],
  );
  return row === undefined ? undefined : Number(row.position);
}

/** The position at which this row's content was hashed, if it is another than where it is. */
function chainedPosition(row: LogRow, last: number): number | undefined {
  const at = Number(row.position);
  const end = Math.min(last + 1, SEARCH_LIMIT);
  for (let p = 1; p <= end; p++) {
    if (p !== at && chainHash(row.prev_hash, fieldsOf(row, p)) === row.hash) return p;
  }
  return undefined;
}

async function verifyStream(
  db: Queryable,
  stream: string,
): Promise<{ rows: number; firstBad: BadRow | null }> {
  const [bounds] = await query<{ last: string | null }>(
    db,
    "SELECT max(position) AS last FROM audit_log WHERE stream = $1",
    [stream],
  );
  const last = Number(bounds?.last ?? 0);
  let expected = 1;
  let expectedPrev = GENESIS_HASH;
  let previous: LogRow | undefined;
  let rows = 0;
  for (;;) {
    const page = await query<LogRow>(
      db,
      `SELECT stream, seq, position, subject, message_id, type, service, headers, payload, stored_at,
              prev_hash, hash, hash_version
       FROM audit_log WHERE stream = $1 AND position >= $2 ORDER BY position LIMIT $3`,
      [stream, expected, PAGE],
    );
    if (page.length === 0) return { rows, firstBad: null };
    for (const row of page) {
      rows += 1;
      const position = Number(row.position);
      const bad = (problem: BadRow["problem"], detail: string, of: LogRow = row): BadRow => ({
        stream,
        seq: Number(of.seq),
        position: Number(of.position),
        problem,
        detail,
      });
      if (position !== expected) {
        const gap = expected === position - 1 ? `${expected}` : `${expected}..${position - 1}`;
        return { rows, firstBad: bad("missing", `position ${gap} is missing before this row`) };
      }
      const untrusted = versionProblem(row, previous);
      if (untrusted !== undefined) return { rows, firstBad: bad("edited", untrusted) };
      if (chainHash(row.prev_hash, fieldsOf(row, position)) !== row.hash) {
        const chainedAt = chainedPosition(row, last);
        if (chainedAt !== undefined) {
          return {
            rows,
            firstBad: bad(
              "reordered",
              `this row was chained at position ${chainedAt} but is stored at position ${position}`,
            ),
          };
        }
        return {
          rows,
          firstBad: bad("edited", "its content no longer matches its hash"),
        };
      }
      if (row.prev_hash !== expectedPrev) {
        const linked = await positionOfHash(db, stream, row.prev_hash);
        if (linked !== undefined) {
          return {
            rows,
            firstBad: bad(
              "reordered",
              `it follows the row at position ${linked}, not the one at position ${position - 1}`,
            ),
          };
        }
        if (previous === undefined) {
          return {
            rows,
            firstBad: bad(
              "missing",
              "it is the first row but links to an earlier one that is gone",
            ),
          };
        }
        return {
          rows,
          firstBad: bad(
            "edited",
            `its hash was rewritten: the next row (position ${position}) was chained to another hash`,
            previous,
          ),
        };
      }
      expected += 1;
      expectedPrev = row.hash;
      previous = row;
    }
  }
}

/**
 * The tail check of one stream against its anchor: the row of `storedThrough` must be there, so
 * a removal of the newest rows (which leaves a valid, shorter chain) is named.
 */
async function verifyTail(db: Queryable, anchor: StreamAnchor): Promise<BadRow | null> {
  if (anchor.storedThrough <= 0) return null;
  const [held] = await query<{ present: boolean; seq: string | null; position: string | null }>(
    db,
    `SELECT EXISTS (SELECT 1 FROM audit_log WHERE stream = $1 AND seq = $2) AS present,
            max(seq) AS seq, max(position) AS position
     FROM audit_log WHERE stream = $1`,
    [anchor.stream, anchor.storedThrough],
  );
  if (held?.present === true) return null;
  const ends =
    held?.seq === null || held?.seq === undefined
      ? "the log holds no row of this stream"
      : `the log ends at seq ${held.seq} (position ${held.position ?? "?"})`;
  return {
    stream: anchor.stream,
    seq: anchor.storedThrough,
    position: Number(held?.position ?? 0) + 1,
    problem: "truncated",
    detail: `the audit consumer acknowledged seq ${anchor.storedThrough} as stored, but ${ends}`,
  };
}

/**
 * The head check of one stream against the chain head anchored in JetStream: the row at the
 * anchored position must still carry the anchored hash. Each row's hash covers all before it, so
 * a stream rewritten with recomputed hashes (edited, shortened, re-chained from genesis) ends
 * elsewhere; the chain alone would pass.
 */
async function verifyHead(db: Queryable, anchor: StreamAnchor): Promise<BadRow | null> {
  const head = anchor.head;
  if (head === undefined) return null;
  const [row] = await query<{ seq: string; hash: string }>(
    db,
    "SELECT seq, hash FROM audit_log WHERE stream = $1 AND position = $2",
    [anchor.stream, head.position],
  );
  const anchored = `JetStream anchored position ${head.position} (seq ${head.seq}) with hash ${head.hash.slice(0, 12)}…`;
  if (row === undefined) {
    return {
      stream: anchor.stream,
      seq: head.seq,
      position: head.position,
      problem: "truncated",
      detail: `${anchored}, but the log holds no row at that position`,
    };
  }
  if (row.hash === head.hash && Number(row.seq) === head.seq) return null;
  return {
    stream: anchor.stream,
    seq: Number(row.seq),
    position: head.position,
    problem: "edited",
    detail:
      `${anchored}, but the row there is seq ${row.seq} with hash ${row.hash.slice(0, 12)}…: ` +
      "the stream's rows up to it were rewritten with recomputed hashes",
  };
}

/**
 * Walks the hash chain of every stream (or one) in position order and names the first row that
 * breaks it: content that no longer matches its hash (edited), a gap in positions or a broken
 * first link (missing), or a row chained at another position than it holds (reordered). A
 * removal of a stream's last rows leaves a valid, shorter chain, and a rewrite with recomputed
 * hashes a valid other one: only an anchor shows them, the acknowledged floor a cut-off tail
 * (truncated) and the anchored head hash a rewrite (edited).
 */
export async function verifyChain(
  db: Queryable,
  options: { readonly stream?: string; readonly anchors?: readonly StreamAnchor[] } = {},
): Promise<ChainReport> {
  const anchors = (options.anchors ?? []).filter(
    (anchor) => options.stream === undefined || anchor.stream === options.stream,
  );
  const stored =
    options.stream === undefined
      ? (
          await query<{ stream: string }>(
            db,
            "SELECT stream FROM audit_log GROUP BY stream ORDER BY stream",
          )
        ).map((row) => row.stream)
      : [options.stream];
  // A stream whose every row is gone is known only from its anchor.
  const streams = [...new Set([...stored, ...anchors.map((a) => a.stream)])].sort();
  const anchored = anchors.map((a) => a.stream).sort();
  let rows = 0;
  for (const stream of streams) {
    const result = await verifyStream(db, stream);
    rows += result.rows;
    if (result.firstBad !== null) {
      return { intact: false, rows, firstBad: result.firstBad, anchored };
    }
    const anchor = anchors.find((a) => a.stream === stream);
    if (anchor === undefined) continue;
    const cut = (await verifyTail(db, anchor)) ?? (await verifyHead(db, anchor));
    if (cut !== null) return { intact: false, rows, firstBad: cut, anchored };
  }
  return { intact: true, rows, firstBad: null, anchored };
}
