import { createHash } from "node:crypto";

/** The `prev_hash` of the first row of every stream. */
export const GENESIS_HASH = "0".repeat(64);

/** JSON values as stored in jsonb and read back by `pg`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * JSON with object keys sorted at every level and no whitespace: the same value serialises the
 * same way whether it came from the message or back from jsonb (which reorders keys).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    // undefined, functions and symbols have no JSON form; they stand for null as in arrays.
    if (value === undefined || typeof value === "function" || typeof value === "symbol") {
      return "null";
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
}

/**
 * How a row's hash was computed. 1: the first rows, whose hash leaves out `type` and `service`
 * (verify then derives both from the payload and subject); 2: every stored column.
 */
export type HashVersion = 1 | 2;

/** The version {@link appendBatch} writes. */
export const CURRENT_HASH_VERSION: HashVersion = 2;

/** What the hash of one audit row covers: every stored column but `prev_hash` and `hash`. */
export interface ChainedFields {
  readonly stream: string;
  readonly seq: number;
  readonly position: number;
  readonly subject: string;
  readonly messageId: string | null;
  /** The payload's `type`, as stored; not covered by version 1. */
  readonly type: string | null;
  /** The payload's `service` (else the subject's last token), as stored; not covered by version 1. */
  readonly service: string | null;
  readonly headers: unknown;
  readonly payload: unknown;
  /** Server time, ISO 8601 with milliseconds. */
  readonly storedAt: string;
  readonly hashVersion: HashVersion;
}

/**
 * sha256 hex of the previous row's hash followed by the row's canonical serialization, in the
 * row's hash version (so a version 1 row still verifies as it was written).
 */
export function chainHash(prevHash: string, row: ChainedFields): string {
  const common = {
    stream: row.stream,
    seq: row.seq,
    position: row.position,
    subject: row.subject,
    messageId: row.messageId,
    headers: row.headers,
    payload: row.payload,
    time: row.storedAt,
  };
  const body =
    row.hashVersion === 1
      ? canonicalJson(common)
      : canonicalJson({ ...common, type: row.type, service: row.service, v: row.hashVersion });
  return createHash("sha256").update(prevHash).update(body).digest("hex");
}

function stringField(payload: unknown, name: string): string | null {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return null;
  const value = (payload as Record<string, unknown>)[name];
  return typeof value === "string" ? value : null;
}

/**
 * The `type` and `service` columns a payload on a subject gets: the envelope's own, the service
 * falling back to the subject's last token. Verify holds version 1 rows (whose hash does not
 * cover them) to these, so they cannot be changed there either.
 */
export function derivedColumns(
  payload: unknown,
  subject: string,
): { readonly type: string | null; readonly service: string } {
  return {
    type: stringField(payload, "type"),
    service: stringField(payload, "service") ?? subject.slice(subject.lastIndexOf(".") + 1),
  };
}
