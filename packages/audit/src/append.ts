import { query, withTransaction } from "@safedeploy/db";
import type { DbLogger, Queryable } from "@safedeploy/db";
import { streamOfEventType } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import type { ChainHead } from "@safedeploy/schema";
import { CURRENT_HASH_VERSION, GENESIS_HASH, chainHash, derivedColumns } from "./chain.js";
import { PROJECTED_TYPES, envelopeOf, projectEnvelopes } from "./project.js";

/**
 * Whether an envelope may feed the read model: it came on its own domain's stream (never
 * DEADLETTER), on the subject of its type and service (`<root>.<type>.<service>`).
 */
function belongs(stream: string, subject: string, envelope: Envelope): boolean {
  return (
    streamOfEventType(envelope.type) === stream &&
    subject.endsWith(`.${envelope.type}.${envelope.service}`)
  );
}

/** The pool type of `@safedeploy/db` (a `pg` pool). */
export type AuditPool = Parameters<typeof withTransaction>[0];

/** One message to store, as its stream holds it. */
export interface AuditMessage {
  /** Stream sequence. */
  readonly seq: number;
  readonly subject: string;
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /** The payload bytes (or text). */
  readonly data: Uint8Array | string;
  /** Server time of storage, ISO 8601. */
  readonly time: string;
}

/** What one {@link appendBatch} did. */
export interface AppendReport {
  /** Rows written now. */
  readonly stored: number;
  /** Sequences that were already stored (redeliveries) or repeated within the batch. */
  readonly skipped: number;
  /** Chain position of the last row written, or null when nothing was written. */
  readonly lastPosition: number | null;
  /**
   * The stream's chain head once the batch committed (also when every message was a redelivery),
   * for anchoring outside PostgreSQL; null only for an empty batch.
   */
  readonly head: ChainHead | null;
  /** Envelopes the read model refused, with the constraint that refused them. */
  readonly refused: readonly { readonly messageId: string; readonly constraint: string }[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Text jsonb stores as it is: no NUL and no lone surrogate (PostgreSQL refuses both). */
const jsonbSafeText = (text: string): boolean =>
  !text.includes("\u0000") && !LONE_SURROGATE.test(text);

/** Whether every string in a parsed JSON value, keys included, is {@link jsonbSafeText}. */
function jsonbSafe(value: unknown): boolean {
  if (typeof value === "string") return jsonbSafeText(value);
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) return value.every(jsonbSafe);
  return Object.entries(value).every(([key, field]) => jsonbSafeText(key) && jsonbSafe(field));
}

const base64Of = (bytes: Uint8Array | string): string =>
  `base64:${(typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes)).toString("base64")}`;

/** A payload as stored: the value the hash covers, and its JSON text for the jsonb column. */
interface StoredPayload {
  readonly value: unknown;
  readonly json: string;
}

/**
 * The stored payload: the parsed JSON when it is JSON, else the text (or, for bytes that are not
 * UTF-8, their base64) as a JSON string. What jsonb would refuse — a NUL or a lone surrogate, as a
 * character or an escape — is stored as the base64 of the bytes, so one such message (anyone may
 * publish to DEADLETTER) cannot stall a stream's audit log. The JSON text is the message's own when
 * it was JSON (jsonb reads it as the value the hash covers), saving a second serialisation.
 */
function storedPayload(data: Uint8Array | string): StoredPayload {
  let text: string;
  if (typeof data === "string") text = data;
  else {
    try {
      text = utf8.decode(data);
    } catch {
      return asString(base64Of(data));
    }
  }
  if (!jsonbSafeText(text)) return asString(base64Of(data));
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return asString(text);
  }
  // Only an escape can put a NUL or a lone surrogate into the parsed strings.
  if (text.includes("\\u") && !jsonbSafe(value)) return asString(base64Of(data));
  return { value, json: text };
}

const asString = (text: string): StoredPayload => ({ value: text, json: JSON.stringify(text) });

/** The stored payload's value (see {@link appendBatch}). */
export function payloadValue(data: Uint8Array | string): unknown {
  return storedPayload(data).value;
}

/** Header values jsonb would refuse, stored as their base64 (as payloads are). */
function storedHeaders(
  headers: Readonly<Record<string, readonly string[]>>,
): Readonly<Record<string, readonly string[]>> {
  if (Object.entries(headers).every(([name, values]) => jsonbSafe(name) && jsonbSafe(values))) {
    return headers;
  }
  return Object.fromEntries(
    Object.entries(headers).map(([name, values]) => [
      jsonbSafeText(name) ? name : base64Of(name),
      values.map((value) => (jsonbSafeText(value) ? value : base64Of(value))),
    ]),
  );
}

function headerValue(
  headers: Readonly<Record<string, readonly string[]>>,
  name: string,
): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key]?.[0];
}

function field(payload: unknown, name: string): string | null {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return null;
  const value = (payload as Record<string, unknown>)[name];
  return typeof value === "string" ? value : null;
}

/** The transaction-scoped advisory lock that serialises the writers of one stream's chain. */
async function lockStream(client: Queryable, stream: string): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
    `safedeploy.audit_log:${stream}`,
  ]);
}

const NOTHING_WRITTEN = {
  stored: 0,
  lastPosition: null,
  head: null,
  refused: [],
} as const;

/**
 * Appends a batch of one stream's messages to the audit log and projects their envelopes into the
 * read model, all in one transaction. Under an advisory lock keyed by the stream it reads the
 * chain's head, skips sequences already stored (redeliveries), assigns the next positions in
 * sequence order, hashes each row onto the previous one and inserts them in one statement; so any
 * number of replicas appending to one stream at once build one chain without gaps or forks.
 * Throws (and writes nothing) when the database fails: the caller retries the batch.
 */
export async function appendBatch(
  pool: AuditPool,
  stream: string,
  messages: readonly AuditMessage[],
  options: { readonly logger?: DbLogger } = {},
): Promise<AppendReport> {
  const unique = [...new Map(messages.map((m) => [m.seq, m])).values()].sort(
    (a, b) => a.seq - b.seq,
  );
  if (unique.length === 0) return { ...NOTHING_WRITTEN, skipped: 0 };
  return withTransaction(pool, async (client) => {
    await lockStream(client, stream);
    // The chain's head, and the highest sequence stored (not the head's when replicas appended
    // out of order): a batch wholly above it holds nothing stored yet, the usual case.
    const [head] = await query<{ position: string; seq: string; hash: string; top: string }>(
      client,
      `SELECT position, seq, hash, (SELECT max(seq) FROM audit_log WHERE stream = $1) AS top
       FROM audit_log WHERE stream = $1 ORDER BY position DESC LIMIT 1`,
      [stream],
    );
    const lowest = unique[0]?.seq ?? 0;
    let fresh = unique;
    if (head !== undefined && lowest <= Number(head.top)) {
      const seen = await query<{ seq: string }>(
        client,
        "SELECT seq FROM audit_log WHERE stream = $1 AND seq = ANY($2::bigint[])",
        [stream, unique.map((m) => m.seq)],
      );
      const stored = new Set(seen.map((row) => Number(row.seq)));
      fresh = unique.filter((m) => !stored.has(m.seq));
    }
    if (fresh.length === 0) {
      const current =
        head === undefined
          ? null
          : { position: Number(head.position), seq: Number(head.seq), hash: head.hash };
      return { ...NOTHING_WRITTEN, skipped: messages.length, head: current };
    }
    let position = head === undefined ? 0 : Number(head.position);
    let prevHash = head?.hash ?? GENESIS_HASH;
    const columns = {
      seq: [] as number[],
      position: [] as number[],
      subject: [] as string[],
      messageId: [] as (string | null)[],
      type: [] as (string | null)[],
      service: [] as string[],
      headers: [] as string[],
      payload: [] as string[],
      storedAt: [] as string[],
      prevHash: [] as string[],
      hash: [] as string[],
    };
    const payloads: unknown[] = [];
    for (const m of fresh) {
      position += 1;
      const { value: payload, json: payloadJson } = storedPayload(m.data);
      const headers = storedHeaders(m.headers);
      const messageId = field(payload, "id") ?? headerValue(headers, "Nats-Msg-Id") ?? null;
      const storedAt = new Date(m.time).toISOString();
      const { type, service } = derivedColumns(payload, m.subject);
      const hash = chainHash(prevHash, {
        stream,
        seq: m.seq,
        position,
        subject: m.subject,
        messageId,
        type,
        service,
        headers,
        payload,
        storedAt,
        hashVersion: CURRENT_HASH_VERSION,
      });
      columns.seq.push(m.seq);
      columns.position.push(position);
      columns.subject.push(m.subject);
      columns.messageId.push(messageId);
      columns.type.push(type);
      columns.service.push(service);
      columns.headers.push(JSON.stringify(headers));
      columns.payload.push(payloadJson);
      columns.storedAt.push(storedAt);
      columns.prevHash.push(prevHash);
      columns.hash.push(hash);
      payloads.push(payload);
      prevHash = hash;
    }
    await client.query(
      `INSERT INTO audit_log (stream, seq, position, subject, message_id, type, service, headers,
         payload, stored_at, prev_hash, hash, hash_version)
       SELECT $1, *, $13::smallint FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[],
         $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::timestamptz[], $11::text[],
         $12::text[])`,
      [
        stream,
        columns.seq,
        columns.position,
        columns.subject,
        columns.messageId,
        columns.type,
        columns.service,
        columns.headers,
        columns.payload,
        columns.storedAt,
        columns.prevHash,
        columns.hash,
        CURRENT_HASH_VERSION,
      ],
    );
    // Stored and shown, never projected: a dead letter (what anyone may publish there), an
    // envelope on a stream or subject its type does not belong to, or a type the read model does
    // not show (checked before validating: most messages are SLI snapshots).
    const projected = payloads.flatMap((payload, index) => {
      if (!PROJECTED_TYPES.has(field(payload, "type") ?? "")) return [];
      const envelope = envelopeOf(payload);
      return envelope === undefined || !belongs(stream, columns.subject[index] ?? "", envelope)
        ? []
        : [envelope];
    });
    const refused = await projectEnvelopes(client, projected);
    for (const refusal of refused) {
      options.logger?.warn(
        { stream, messageId: refusal.messageId, constraint: refusal.constraint },
        "read model refused an event; it stays in the audit log",
      );
    }
    return {
      stored: fresh.length,
      skipped: messages.length - fresh.length,
      lastPosition: position,
      head: { position, seq: fresh.at(-1)?.seq ?? 0, hash: prevHash },
      refused,
    };
  });
}
