import { createHash } from "node:crypto";

/** A serialized snapshot (UTF-8 JSON, encoded once), ready to send, with its entity tag. */
export interface CachedSnapshot {
  readonly body: Buffer;
  /** A weak tag (`W/"…"`) of the snapshot's content: equal tags, equivalent snapshots. */
  readonly etag: string;
}

export interface SnapshotCacheOptions<T> {
  /** Builds the snapshot (the read-model queries). */
  readonly load: () => Promise<T>;
  /**
   * The part of the snapshot its tag covers; default all of it. The snapshot's own build time is
   * left out, so a rebuild that found nothing new keeps its tag and clients keep their 304s.
   */
  readonly content?: (snapshot: T) => unknown;
  /** A token that changes whenever the read model may have (see `readModelVersion`). */
  readonly version: () => Promise<string>;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /**
   * How long an unchanged snapshot is served again: freezes start and end with the clock, not
   * with a write, so even an unchanged read model is rebuilt after this long.
   */
  readonly maxAgeMs: number;
}

/**
 * The whole-system snapshot, built once however many ask at a time: requests that arrive while
 * one is being built share it, and a built one is served again while the read model's version is
 * unchanged and it is younger than `maxAgeMs`. At 10,000 services a build costs ~300 ms of CPU,
 * so without this, concurrent dashboards each paid for their own.
 */
export function snapshotCache<T>(options: SnapshotCacheOptions<T>): {
  get(): Promise<CachedSnapshot>;
} {
  const content = options.content ?? ((snapshot: T) => snapshot);
  let cached: (CachedSnapshot & { readonly version: string; readonly builtAt: number }) | null =
    null;
  let building: Promise<CachedSnapshot> | null = null;

  const build = async (): Promise<CachedSnapshot> => {
    const version = await options.version();
    if (
      cached !== null &&
      cached.version === version &&
      options.now() - cached.builtAt < options.maxAgeMs
    ) {
      return cached;
    }
    const builtAt = options.now();
    const snapshot = await options.load();
    const body = Buffer.from(JSON.stringify(snapshot));
    const digest = createHash("sha256").update(JSON.stringify(content(snapshot)));
    const etag = `W/"${digest.digest("base64url").slice(0, 27)}"`;
    cached = { body, etag, version, builtAt };
    return cached;
  };

  return {
    get: () => {
      building ??= build().finally(() => {
        building = null;
      });
      return building;
    },
  };
}

/**
 * Whether an `If-None-Match` header names `etag` (RFC 9110 §13.1.2: a list of tags or `*`,
 * compared weakly, so `W/"x"` and `"x"` match).
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || opaque(tag) === opaque(etag));
}
