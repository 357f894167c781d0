import type { KvApi, StoredMessage } from "./kv-api.js";

/** A key's value as the mirror knows it: `value` null when the key is absent or deleted. */
interface MirroredEntry<V> {
  readonly revision: number;
  readonly value: V | null;
}

/** One round of catching up: every caller that joined it is released when it is done. */
interface Round {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function newRound(): Round {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** How many of its own writes a mirror remembers before it catches up unasked. */
const OWN_WRITES_BEFORE_A_ROUND = 1_000;

/** Deep-freezes what the mirror hands out: every reader shares it, nobody may change it. */
function frozen<V>(value: V): V {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) frozen(child);
  }
  return value;
}

export interface KvMirrorOptions<V> {
  readonly api: KvApi;
  /** The bucket's subject prefix, `$KV.<bucket>.`. */
  readonly prefix: string;
  /** Decodes a stored value (throws on an invalid one). */
  readonly decode: (key: string, bytes: Uint8Array) => V;
  /** The keys this mirror keeps; others are read from the server each time. */
  readonly keeps: (key: string) => boolean;
}

/**
 * A local copy of the keys of one KV bucket that this process reads, kept exact by a read
 * barrier instead of trust: before answering, {@link KvMirror.sync} asks the stream for its last
 * sequence and reads every message it has not seen up to there (its own writes it knows already).
 * So a read is as fresh as a read from the server at the moment it was asked, and writes another
 * replica acknowledged before are never missed (fail closed: a mirror that cannot catch up
 * answers nothing). Concurrent readers share one round, so at fleet scale one stream-state request
 * serves many reads, and a bucket written by this replica alone costs that request and nothing
 * else. A key is read from the server the first time it is asked for, and then followed.
 *
 * A bucket deleted and made anew, or messages removed before this mirror read them, make it forget
 * all it holds. A stream purged under it (which no SafeDeploy user may do: `FORBIDDEN_JS_API`)
 * and written again past the point it had seen goes unnoticed until the keys are written again.
 */
export class KvMirror<V> {
  readonly #options: KvMirrorOptions<V>;
  readonly #entries = new Map<string, MirroredEntry<V>>();
  /** Every message up to this sequence has been applied (or was written by this process). */
  #seen = 0;
  /** Sequences of this process's own writes above {@link #seen}: known without reading them. */
  readonly #own = new Set<number>();
  readonly #lookups = new Map<string, Promise<MirroredEntry<V>>>();
  /** Bumped when the mirror forgets: a server read begun before must not be kept. */
  #epoch = 0;
  #queued: Round | undefined;
  #running = false;

  constructor(options: KvMirrorOptions<V>, startAt: number) {
    this.#options = options;
    this.#seen = startAt;
  }

  /** The key's entry as of a moment after the call (value null: absent); a kept key only. */
  async get(key: string): Promise<MirroredEntry<V>> {
    await this.sync();
    return this.known(key);
  }

  /**
   * The key's entry as this mirror last knew it, without waiting for a round: it may be older than
   * the server's. Only for a compare-and-set, which the server refuses on an old revision.
   */
  async known(key: string): Promise<MirroredEntry<V>> {
    return this.#entries.get(key) ?? (await this.#lookup(key));
  }

  /** Whether this mirror keeps `key` (the others are read from the server each time). */
  keeps(key: string): boolean {
    return this.#options.keeps(key);
  }

  /**
   * Records this process's own acknowledged write (its sequence is skipped when catching up, kept
   * key or not), with its value as stored.
   */
  wrote(key: string, value: V | null, revision: number): void {
    if (revision > this.#seen) this.#own.add(revision);
    this.#apply(key, revision, value === null ? null : frozen(value));
    // A process that only writes (its reads are peeks, see `known`) would hold every sequence it
    // wrote: a round now and then moves `seen` past them.
    if (this.#own.size >= OWN_WRITES_BEFORE_A_ROUND && !this.#running) {
      this.sync().catch(() => undefined);
    }
  }

  /** Resolves once every write acknowledged before the call has been applied. */
  sync(): Promise<void> {
    this.#queued ??= newRound();
    const { promise } = this.#queued;
    if (!this.#running) void this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    // A round that began before a caller arrived may miss its writes: the caller waits for the
    // next round, which begins after it.
    for (let round = this.#queued; round !== undefined; round = this.#queued) {
      this.#queued = undefined;
      try {
        await this.#catchUp();
        round.resolve();
      } catch (error) {
        round.reject(error);
      }
    }
    this.#running = false;
  }

  async #catchUp(): Promise<void> {
    const { api, prefix } = this.#options;
    const { first, last } = await api.sequences();
    if (last < this.#seen || first > this.#seen + 1) {
      // The bucket was made anew, or messages this mirror never read are gone (purged, or all
      // replaced): what it holds may be gone too. Forget it all; keys are read afresh.
      this.#forget(last);
      return;
    }
    let next = this.#seen + 1;
    while (next <= last) {
      if (this.#own.delete(next)) {
        next += 1;
        continue;
      }
      const message = await api.nextFrom(next, `${prefix}>`);
      if (message === null) {
        // Messages up to `last` are gone (the stream was purged under us): the same.
        this.#forget(last);
        return;
      }
      this.#applyMessage(message);
      next = message.seq + 1;
    }
    this.#seen = Math.max(this.#seen, last);
    for (const seq of this.#own) if (seq <= this.#seen) this.#own.delete(seq);
  }

  /** Drops everything held; keys are read from the server again, as of `last` and after. */
  #forget(last: number): void {
    this.#epoch += 1;
    this.#entries.clear();
    this.#own.clear();
    this.#seen = last;
  }

  #applyMessage(message: StoredMessage): void {
    const key = message.subject.slice(this.#options.prefix.length);
    if (!this.#options.keeps(key)) return;
    if (message.operation !== "PUT") {
      this.#apply(key, message.seq, null);
      return;
    }
    const known = this.#entries.get(key);
    if (known !== undefined && known.revision >= message.seq) return;
    this.#apply(key, message.seq, frozen(this.#options.decode(key, message.data)));
  }

  #apply(key: string, revision: number, value: V | null): void {
    if (!this.#options.keeps(key)) return;
    const known = this.#entries.get(key);
    if (known !== undefined && known.revision >= revision) return;
    this.#entries.set(key, { revision, value });
  }

  /**
   * The key read from the server, shared by concurrent readers of it. Fresh even without a sync
   * before it: a later write has a sequence above the one read, and catching up applies it.
   */
  #lookup(key: string): Promise<MirroredEntry<V>> {
    let pending = this.#lookups.get(key);
    if (pending === undefined) {
      pending = this.#readFromServer(key).finally(() => this.#lookups.delete(key));
      this.#lookups.set(key, pending);
    }
    return pending;
  }

  async #readFromServer(key: string): Promise<MirroredEntry<V>> {
    const epoch = this.#epoch;
    const message = await this.#options.api.lastOf(`${this.#options.prefix}${key}`);
    // Absent: any later write has a sequence above what was synced, and catching up applies it.
    const read: MirroredEntry<V> =
      message === null
        ? { revision: 0, value: null }
        : {
            revision: message.seq,
            value:
              message.operation === "PUT" ? frozen(this.#options.decode(key, message.data)) : null,
          };
    if (epoch !== this.#epoch) return read; // fresh for this reader, not to be kept
    this.#apply(key, read.revision, read.value);
    // What the mirror holds now: the read, or a newer write applied meanwhile.
    return this.#entries.get(key) ?? read;
  }
}
