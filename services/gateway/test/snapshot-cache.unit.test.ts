import { describe, expect, it } from "vitest";
import { matchesIfNoneMatch, snapshotCache } from "../src/snapshot-cache.js";

function fixture() {
  const state = { version: "v1", now: 0, loads: 0, fail: false, data: "d1" };
  let release: (() => void) | null = null;
  const cache = snapshotCache({
    version: () => Promise.resolve(state.version),
    load: async () => {
      state.loads += 1;
      await new Promise<void>((resolve) => (release = resolve));
      if (state.fail) throw new Error("database down");
      return { version: state.version, load: state.loads, data: state.data };
    },
    content: ({ data }) => data,
    now: () => state.now,
    maxAgeMs: 2_000,
  });
  /** Lets the pending load finish, once it has started. */
  const finish = async () => {
    while (release === null) await new Promise((resolve) => setTimeout(resolve, 1));
    release();
    release = null;
  };
  return { state, cache, finish };
}

describe("snapshotCache", () => {
  it("builds once for all concurrent requests", async () => {
    const { state, cache, finish } = fixture();
    const asked = Array.from({ length: 8 }, () => cache.get());
    await finish();
    const answers = await Promise.all(asked);
    expect(state.loads).toBe(1);
    expect(new Set(answers.map((a) => a.etag)).size).toBe(1);
    expect(JSON.parse(answers[0]!.body.toString())).toEqual({ version: "v1", load: 1, data: "d1" });
    expect(answers[0]!.etag).toMatch(/^W\/"[\w-]{27}"$/);
  });

  it("serves the same snapshot while the version is unchanged and it is young", async () => {
    const { state, cache, finish } = fixture();
    const first = cache.get();
    await finish();
    const built = await first;
    state.now = 1_999;
    expect(await cache.get()).toBe(built);
    expect(state.loads).toBe(1);
  });

  it("rebuilds when the read model changed, or when the snapshot grew old; tags its content", async () => {
    const { state, cache, finish } = fixture();
    const first = cache.get();
    await finish();
    const v1 = await first;
    state.version = "v2";
    const second = cache.get();
    await finish();
    const v2 = await second;
    // Rebuilt (the body is new), but nothing the tag covers changed: clients keep their 304s.
    expect(JSON.parse(v2.body.toString())).toMatchObject({ version: "v2", load: 2 });
    expect(v2.etag).toBe(v1.etag);
    state.now = 2_000;
    state.data = "d2";
    const third = cache.get();
    await finish();
    const v3 = await third;
    expect(JSON.parse(v3.body.toString())).toEqual({ version: "v2", load: 3, data: "d2" });
    expect(v3.etag).not.toBe(v1.etag);
  });

  it("a failed build fails its waiters only; the next request builds again", async () => {
    const { state, cache, finish } = fixture();
    state.fail = true;
    const failing = cache.get();
    await finish();
    await expect(failing).rejects.toThrow("database down");
    state.fail = false;
    const retried = cache.get();
    await finish();
    expect(JSON.parse((await retried).body.toString())).toMatchObject({ load: 2 });
  });
});

describe("matchesIfNoneMatch", () => {
  const etag = 'W/"abc"';
  it("matches the tag, weakly, in a list, or *", () => {
    expect(matchesIfNoneMatch('W/"abc"', etag)).toBe(true);
    expect(matchesIfNoneMatch('"abc"', etag)).toBe(true);
    expect(matchesIfNoneMatch('"x", W/"abc"', etag)).toBe(true);
    expect(matchesIfNoneMatch("*", etag)).toBe(true);
  });
  it("does not match another tag or no header", () => {
    expect(matchesIfNoneMatch('W/"abd"', etag)).toBe(false);
    expect(matchesIfNoneMatch(undefined, etag)).toBe(false);
    expect(matchesIfNoneMatch("", etag)).toBe(false);
  });
});
