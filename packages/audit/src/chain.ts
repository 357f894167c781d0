import { createHash } from "node:crypto";
import { canonicalJson } from "@safedeploy/schema";

/** The `prev_hash` of the first row of every stream. */
export const GENESIS_HASH = "0".repeat(64);

/** JSON values as stored in jsonb and read back by `pg`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

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
