import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { qualifiedName } from "@safedeploy/schema";
import type { z } from "zod";
import type { Bus } from "./connection.js";
import { KvConflictError, TerminalError } from "./errors.js";
import { mutate } from "./mutate.js";

/** A value and the revision it was read at, for a later compare-and-set. */
export interface Revisioned<V> {
  readonly value: V;
  readonly revision: number;
}

/** A KV bucket whose values are validated JSON; every write is compare-and-set. */
export interface TypedKv<V> {
  readonly bucket: string;
  get(key: string): Promise<Revisioned<V> | null>;
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

function isWrongRevision(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** Opens a provisioned bucket (see `provision`) with values checked by `schema`. */
export async function openKv<V>(
  bus: Bus,
  bucket: string,
  schema: z.ZodType<V>,
): Promise<TypedKv<V>> {
  const name = qualifiedName(bus.ns, bucket);
  const kv: KV = await new Kvm(bus.js).open(name);

  const decode = (key: string, bytes: Uint8Array): V => {
    const parsed = schema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!parsed.success) {
      throw new TerminalError(`${name}/${key} holds an invalid value: ${parsed.error.message}`);
    }
    return parsed.data;
  };
  const encode = (value: V): string => JSON.stringify(schema.parse(value));

  const typed: TypedKv<V> = {
    bucket: name,
    async get(key) {
      const entry = await kv.get(key);
      if (entry?.operation !== "PUT") return null;
      return { value: decode(key, entry.value), revision: entry.revision };
    },
    async create(key, value) {
      try {
        return await kv.create(key, encode(value));
      } catch (error) {
        if (isWrongRevision(error)) throw new KvConflictError(name, key, 0, { cause: error });
        throw error;
      }
    },
    async update(key, value, revision) {
      try {
        return await kv.update(key, encode(value), revision);
      } catch (error) {
        if (isWrongRevision(error))
          throw new KvConflictError(name, key, revision, { cause: error });
        throw error;
      }
    },
    async mutate(key, decide, options = {}) {
      const { entry, changed } = await mutate(
        typed,
        key,
        (current) => ({ next: decide(current), result: undefined }),
        options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts },
      );
      return { entry, changed };
    },
    async remove(key, revision) {
      try {
        await kv.delete(key, { previousSeq: revision });
      } catch (error) {
        if (isWrongRevision(error))
          throw new KvConflictError(name, key, revision, { cause: error });
        throw error;
      }
    },
  };
  return typed;
}
