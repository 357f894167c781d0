import { KvConflictError } from "./errors.js";
import type { Revisioned, TypedKv } from "./kv.js";

/** What a pure decision makes of a key's current entry. */
export interface Decision<V, R> {
  /** The value to write by compare-and-set, or undefined to leave the key as it is. */
  readonly next: V | undefined;
  /** What the caller learns from the decision (the decision of the attempt that won). */
  readonly result: R;
}

/** Events decided together with a value (kept in it), published only after the write. */
export interface Outbox<V> {
  /** Whether a value still holds events that were decided but not confirmed published. */
  readonly pending: (value: V) => boolean;
  /** Publishes a written entry's events (idempotently, by message id), then clears them. */
  readonly flush: (entry: Revisioned<V>) => Promise<void>;
}

export interface MutateOptions<V> {
  /** Attempts before giving up on a key that keeps moving (default 20). */
  readonly maxAttempts?: number;
  readonly outbox?: Outbox<V>;
  /** The wait before attempt n+1, by n: jittered so racing replicas spread out (default). */
  readonly backoffMs?: (attempt: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Up to 2^n ms, at most 100 ms, at random: replicas that collided retry at different moments. */
const jittered = (attempt: number): number =>
  Math.random() * Math.min(100, 2 ** Math.min(attempt, 7));

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The one read-decide-write loop of SafeDeploy: reads `key`, lets `decide` (pure: it may run more
 * than once) say what to write, and writes it by compare-and-set on the revision read (creating
 * the key when it is absent). Another writer first: read again and decide again, with a bounded
 * number of jittered retries, then a retryable {@link KvConflictError}. With an outbox, events a
 * crash left in the value are flushed before deciding, and the written value's events after.
 */
export function mutate<V, R>(
  kv: TypedKv<V>,
  key: string,
  decide: (current: Revisioned<V> | null) => Decision<V, R>,
  options: MutateOptions<V> = {},
): Promise<Mutated<V, R>> {
  return oneAtATime(kv, key, () => mutateOnce(kv, key, decide, options));
}

interface Mutated<V, R> {
  readonly result: R;
  readonly entry: Revisioned<V> | null;
  readonly changed: boolean;
}

const queues = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * Runs the work of one key of `scope` in this process one after another, in the order asked.
 * mutate uses it per bucket: concurrent handlers (the SLOs of one service, say) would otherwise
 * race each other's compare-and-set and retry; only other replicas are left to race, and the
 * revision check settles those.
 */
export async function oneAtATime<T>(scope: object, key: string, run: () => Promise<T>): Promise<T> {
  let byKey = queues.get(scope);
  if (byKey === undefined) {
    byKey = new Map();
    queues.set(scope, byKey);
  }
  const mine = (byKey.get(key) ?? Promise.resolve()).then(run, run);
  const settled = mine.catch(() => undefined);
  byKey.set(key, settled);
  try {
    return await mine;
  } finally {
    if (byKey.get(key) === settled) byKey.delete(key);
  }
}

/** Writes `next` by compare-and-set on `current`; undefined when another writer was first. */
async function writeOver<V>(
  kv: TypedKv<V>,
  key: string,
  current: Revisioned<V> | null,
  next: V,
): Promise<number | undefined> {
  try {
    return current === null
      ? await kv.create(key, next)
      : await kv.update(key, next, current.revision);
  } catch (error) {
    if (error instanceof KvConflictError) return undefined;
    throw error;
  }
}

async function mutateOnce<V, R>(
  kv: TypedKv<V>,
  key: string,
  decide: (current: Revisioned<V> | null) => Decision<V, R>,
  options: MutateOptions<V>,
): Promise<Mutated<V, R>> {
  const maxAttempts = options.maxAttempts ?? 20;
  const backoff = options.backoffMs ?? jittered;
  const sleep = options.sleep ?? wait;
  const written = async (next: V, revision: number, result: R): Promise<Mutated<V, R>> => {
    const entry = { value: next, revision };
    if (options.outbox?.pending(next) === true) await options.outbox.flush(entry);
    return { result, entry, changed: true };
  };
  // First on what this process last knew, when that may be old (a mirrored bucket answers without
  // its read barrier): the compare-and-set refuses it then. Anything else — nothing to write, a
  // conflict, events left in the value — is decided again on a fresh read, never on an old one.
  const peeked = await kv.peek(key);
  const { entry: known } = peeked;
  if (!peeked.fresh && (known === null || options.outbox?.pending(known.value) !== true)) {
    const { next, result } = decide(known);
    if (next !== undefined) {
      const revision = await writeOver(kv, key, known, next);
      if (revision !== undefined) return written(next, revision, result);
    }
  }
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    const current = attempt === 1 && peeked.fresh ? known : await kv.get(key);
    if (current !== null && options.outbox?.pending(current.value) === true) {
      await options.outbox.flush(current);
      continue;
    }
    const { next, result } = decide(current);
    if (next === undefined) return { result, entry: current, changed: false };
    const revision = await writeOver(kv, key, current, next);
    if (revision !== undefined) return written(next, revision, result);
    if (attempt < maxAttempts) await sleep(backoff(attempt));
  }
  throw new KvConflictError(kv.bucket, key, -1, {
    cause: new Error(`${key} kept changing under ${maxAttempts} attempts`),
  });
}
