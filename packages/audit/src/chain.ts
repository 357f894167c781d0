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

/** What the hash of one audit row covers. */
export interface ChainedFields {
  readonly stream: string;
  readonly seq: number;
  readonly position: number;
  readonly subject: string;
  readonly messageId: string | null;
  readonly headers: unknown;
  readonly payload: unknown;
  /** Server time, ISO 8601 with milliseconds. */
  readonly storedAt: string;
}

/** sha256 hex of the previous row's hash followed by the row's canonical serialization. */
export function chainHash(prevHash: string, row: ChainedFields): string {
  const body = canonicalJson({
    stream: row.stream,
    seq: row.seq,
    position: row.position,
    subject: row.subject,
    messageId: row.messageId,
    headers: row.headers,
    payload: row.payload,
    time: row.storedAt,
  });
  return createHash("sha256").update(prevHash).update(body).digest("hex");
}
