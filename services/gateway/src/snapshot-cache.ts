import { createHash } from "node:crypto";

/** A serialized snapshot (UTF-8 JSON, encoded once), ready to send, with its entity tag. */
export interface CachedSnapshot {
  readonly body: Buffer;
  readonly etag: string;
}

export interface SnapshotCacheOptions {
  /** Builds the snapshot (the read-model queries). */
  readonly load: () => Promise<unknown>;
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
export function snapshotCache(options: SnapshotCacheOptions): { get(): Promise<CachedSnapshot> } {
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
    const body = Buffer.from(JSON.stringify(await options.load()));
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
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
