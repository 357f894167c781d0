import { qualifiedName } from "@safedeploy/schema";
import type { z } from "zod";
import type { Bus } from "./connection.js";
import { KvConflictError, TerminalError } from "./errors.js";
import { isWrongLastSequence, kvApi } from "./kv-api.js";
import { KvMirror } from "./kv-mirror.js";
import { mutate } from "./mutate.js";
import { busReplies } from "./publish.js";

/** A value and the revision it was read at, for a later compare-and-set. */
export interface Revisioned<V> {
  readonly value: V;
  readonly revision: number;
}

/** A KV bucket whose values are validated JSON; every write is compare-and-set. */
export interface TypedKv<V> {
  readonly bucket: string;
  get(key: string): Promise<Revisioned<V> | null>;
  /**
   * The entry as this process last knew it: a mirrored key is answered without the read barrier,
   * so it may be older than the server's (`fresh` false); others are read from the server, as by
   * `get`. Only for a compare-and-set, which the server refuses on an old revision ({@link mutate}).
   */
  peek(key: string): Promise<{ readonly entry: Revisioned<V> | null; readonly fresh: boolean }>;
  /** Writes only if the key does not exist; else throws {@link KvConflictError}. */
  create(key: string, value: V): Promise<number>;
  /** Writes only if the key is still at `revision`; else throws {@link KvConflictError}. */
  update(key: string, value: V, revision: number): Promise<number>;
  /**
   * Read-decide-write with retry on conflict: `decide` gets the current entry and returns the new
   * value, or `undefined` to leave the key alone. `decide` must be pure; it may run more than once.
   */
  mutate(
    key: string,
    decide: (current: Revisioned<V> | null) => V | undefined,
    options?: { maxAttempts?: number },
  ): Promise<{ entry: Revisioned<V> | null; changed: boolean }>;
  /** Removes the key if it is still at `revision`. */
  remove(key: string, revision: number): Promise<void>;
}

/** What a bucket may be opened with. */
export interface KvOptions {
  /**
   * Serve reads from a local mirror kept exact by a read barrier (see {@link KvMirror}): for the
   * hot buckets read on every evaluation and gate query. `keys` picks the keys it keeps (one
   * bucket may hold records of several shapes); default: every key.
   */
  readonly mirror?: boolean | { readonly keys: (key: string) => boolean };
}

/** NATS KV's key rule: tokens of letters, digits and `-_=/`, separated by single dots. */
const KEY_TOKEN = /^[-/=\w]+$/;
const isValidKey = (key: string): boolean => key.split(".").every((token) => KEY_TOKEN.test(token));

/** Opens a provisioned bucket (see `provision`) with values checked by `schema`. */
export async function openKv<V>(
  bus: Bus,
  bucket: string,
  schema: z.ZodType<V>,
  options: KvOptions = {},
): Promise<TypedKv<V>> {
  const name = qualifiedName(bus.ns, bucket);
  const stream = `KV_${name}`;
  const prefix = `$KV.${name}.`;
  const api = kvApi(busReplies(bus), stream);
  // Fails here, not on first use, when the bucket was never provisioned.
  const { last: startAt } = await api.sequences().catch((error: unknown) => {
    throw new Error(`KV bucket ${name} is not available: ${String(error)}`, { cause: error });
  });

  const decode = (key: string, bytes: Uint8Array): V => {
    const parsed = schema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!parsed.success) {
      throw new TerminalError(`${name}/${key} holds an invalid value: ${parsed.error.message}`);
    }
    return parsed.data;
  };
  const subjectOf = (key: string): string => {
    if (!isValidKey(key)) throw new TerminalError(`${name}: invalid key ${JSON.stringify(key)}`);
    return prefix + key;
  };
  const kept =
    options.mirror === true
      ? () => true
      : options.mirror === undefined || options.mirror === false
        ? undefined
        : options.mirror.keys;
  const mirror =
    kept === undefined ? undefined : new KvMirror<V>({ api, prefix, decode, keeps: kept }, startAt);

  /** Writes by compare-and-set on `revision`; a lost race is a {@link KvConflictError}. */
  const write = async (key: string, value: V | null, revision: number): Promise<number> => {
    const subject = subjectOf(key);
    // The value as stored (defaults applied): what a later read decodes, and what the mirror keeps.
    const stored = value === null ? null : schema.parse(value);
    let seq: number;
    try {
      seq = await api.write(
        subject,
        stored === null ? "" : JSON.stringify(stored),
        revision,
        ...(stored === null ? (["DEL"] as const) : []),
      );
    } catch (error) {
      if (isWrongLastSequence(error)) {
        throw new KvConflictError(name, key, revision, { cause: error });
      }
      throw error;
    }
    mirror?.wrote(key, stored, seq);
    return seq;
  };

  const typed: TypedKv<V> = {
    bucket: name,
    async get(key) {
      const subject = subjectOf(key);
      if (mirror?.keeps(key) === true) {
        const entry = await mirror.get(key);
        return entry.value === null ? null : { value: entry.value, revision: entry.revision };
      }
      const message = await api.lastOf(subject);
      if (message?.operation !== "PUT") return null;
      return { value: decode(key, message.data), revision: message.seq };
    },
    async peek(key) {
      if (mirror?.keeps(key) !== true) return { entry: await typed.get(key), fresh: true };
      subjectOf(key); // an invalid key is refused by name, as get refuses it
      const known = await mirror.known(key);
      const entry = known.value === null ? null : { value: known.value, revision: known.revision };
      return { entry, fresh: false };
    },
    async create(key, value) {
      try {
        return await write(key, value, 0);
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw error;
        // A deleted key may be created again: its delete marker is its last message.
        const last = await api.lastOf(subjectOf(key));
        if (last === null || last.operation === "PUT") {
          throw new KvConflictError(name, key, 0, { cause: error });
        }
        return await write(key, value, last.seq);
      }
    },
    update: (key, value, revision) => write(key, value, revision),
    async mutate(key, decide, mutateOptions = {}) {
      const { entry, changed } = await mutate(
        typed,
        key,
        (current) => ({ next: decide(current), result: undefined }),
        mutateOptions.maxAttempts === undefined ? {} : { maxAttempts: mutateOptions.maxAttempts },
      );
      return { entry, changed };
    },
    async remove(key, revision) {
      await write(key, null, revision);
    },
  };
  return typed;
}
