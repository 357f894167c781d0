// A mirrored KV bucket against a real JetStream: two "replicas" (two connections) share a bucket,
// and each reads through its own local mirror. A read must never be older than a write another
// replica had acknowledged before it, deletes and purges must be seen, a lost compare-and-set must
// be retried on the winner's value, concurrent reads must share their barrier requests, and a
// mirror that cannot reach the server must answer nothing rather than what it last knew.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { connectBus, KvConflictError, mutate, openKv, provision } from "@safedeploy/jetstream";
import type { Bus, TypedKv } from "@safedeploy/jetstream";
import { qualifiedName, SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { createTestBus } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";

const Record = z.object({ count: z.number(), tags: z.array(z.string()).default([]) });
type Record = z.infer<typeof Record>;

let harness: TestBus;
let other: Bus;
let mine: TypedKv<Record>;
let theirs: TypedKv<Record>;

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus, {
    ...SAFEDEPLOY_TOPOLOGY,
    buckets: [{ name: "mirrored", history: 1, description: "test" }],
  });
  other = await connectBus({ servers: [harness.url], name: "other", ns: harness.bus.ns });
  mine = await openKv(harness.bus, "mirrored", Record, {
    mirror: { keys: (key) => !key.startsWith("plain.") },
  });
  theirs = await openKv(other, "mirrored", Record, { mirror: true });
});

/** Counts the stream-state requests (the mirrors' read barriers) on the test bucket. */
async function countStateRequests() {
  const stream = `KV_${qualifiedName(harness.bus.ns, "mirrored")}`;
  let count = 0;
  const watcher = harness.bus.connection.subscribe(`$JS.API.STREAM.INFO.${stream}`, {
    callback: () => {
      count += 1;
    },
  });
  await harness.bus.connection.flush();
  return {
    get count() {
      return count;
    },
    reset: () => {
      count = 0;
    },
    stop: () => {
      watcher.unsubscribe();
    },
  };
}

afterAll(async () => {
  await other.close().catch(() => undefined);
  await harness.cleanup();
});

describe("a mirrored KV bucket", () => {
  it("reads every write another replica acknowledged before the read, at once", async () => {
    for (let n = 1; n <= 200; n += 1) {
      const before = await theirs.get("shared");
      const revision =
        before === null
          ? await mine.create("shared", { count: n, tags: [] })
          : await mine.update("shared", { count: n, tags: [] }, before.revision);
      // No wait, no retry: the very next read on the other replica sees it.
      expect(await theirs.get("shared")).toEqual({ value: { count: n, tags: [] }, revision });
    }
  });

  it("sees deletes, and keys created again after them", async () => {
    const revision = await mine.create("deleted", { count: 1, tags: [] });
    expect((await theirs.get("deleted"))?.value.count).toBe(1);
    await mine.remove("deleted", revision);
    expect(await theirs.get("deleted")).toBeNull();
    expect(await mine.get("deleted")).toBeNull();
    await mine.create("deleted", { count: 2, tags: [] });
    expect((await theirs.get("deleted"))?.value.count).toBe(2);
  });

  it("retries a lost compare-and-set on the winner's value, never on its own stale copy", async () => {
    await mine.create("raced", { count: 0, tags: [] });
    await theirs.get("raced"); // now in the other mirror
    const bump = (kv: TypedKv<Record>) =>
      mutate(kv, "raced", (current) => ({
        next: { count: (current?.value.count ?? 0) + 1, tags: [] },
        result: undefined,
      }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 === 0 ? mine : theirs)));
    expect((await mine.get("raced"))?.value.count).toBe(20);
    expect((await theirs.get("raced"))?.value.count).toBe(20);
    // A write on an old revision is refused, as without a mirror.
    await expect(mine.update("raced", { count: -1, tags: [] }, 1)).rejects.toBeInstanceOf(
      KvConflictError,
    );
  });

  it("decides a compare-and-set on what it knows, without a barrier, and is refused when that is old", async () => {
    const requests = await countStateRequests();
    await mine.create("optimistic", { count: 0, tags: [] });
    const increment = (current: { value: Record } | null) => ({
      next: { count: (current?.value.count ?? 0) + 1, tags: [] },
      result: current?.value.count ?? null,
    });
    requests.reset();
    // Only this replica writes: 50 read-decide-writes ask the stream's state not once.
    for (let n = 0; n < 50; n += 1) await mutate(mine, "optimistic", increment);
    await harness.bus.connection.flush();
    expect(requests.count).toBe(0);
    // A process that only writes still catches up now and then, so it does not remember every
    // sequence it wrote: 1,000 writes make one round.
    for (let n = 0; n < 1_000; n += 1) await mutate(mine, "optimistic", increment);
    await harness.bus.connection.flush();
    expect(requests.count).toBeGreaterThan(0);
    expect(requests.count).toBeLessThan(5);
    // The other replica writes: this mirror's copy is now old, the server refuses it, and the
    // decision is taken again on the winner's value.
    const theirsNow = await theirs.get("optimistic");
    await theirs.update("optimistic", { count: 1_000, tags: [] }, theirsNow?.revision ?? 0);
    const { result } = await mutate(mine, "optimistic", increment);
    expect(result).toBe(1_000);
    expect((await theirs.get("optimistic"))?.value.count).toBe(1_001);
    requests.stop();
  });

  it("never leaves a key alone on an old copy: nothing to write is decided again, fresh", async () => {
    await mine.create("left-alone", { count: 1, tags: [] });
    await mine.get("left-alone"); // known to this mirror
    const before = await theirs.get("left-alone");
    await theirs.update("left-alone", { count: 2, tags: [] }, before?.revision ?? 0);
    // On the old copy (1) this writes nothing; on the fresh one (2) it must write.
    const { changed, result } = await mutate(mine, "left-alone", (current) =>
      current?.value.count === 2
        ? { next: { count: 3, tags: ["fresh"] }, result: "wrote" }
        : { next: undefined, result: "left alone" },
    );
    expect({ changed, result }).toEqual({ changed: true, result: "wrote" });
    expect((await theirs.get("left-alone"))?.value).toEqual({ count: 3, tags: ["fresh"] });
  });

  it("serves concurrent reads with a few shared stream-state requests", async () => {
    const requests = await countStateRequests();
    await mine.create("busy", { count: 7, tags: [] });
    const reads = await Promise.all(Array.from({ length: 500 }, () => theirs.get("busy")));
    await harness.bus.connection.flush();
    requests.stop();
    expect(reads.every((read) => read?.value.count === 7)).toBe(true);
    // One request per round, and a round serves every read that arrived while one ran.
    expect(requests.count).toBeGreaterThan(0);
    expect(requests.count).toBeLessThan(20);
  });

  it("hands out frozen values: a reader cannot change what the next one reads", async () => {
    await mine.create("frozen", { count: 1, tags: ["a"] });
    const tags = (await theirs.get("frozen"))?.value.tags ?? [];
    expect(tags).toEqual(["a"]);
    expect(() => tags.push("b")).toThrow(TypeError);
    expect((await theirs.get("frozen"))?.value.tags).toEqual(["a"]);
  });

  it("keeps only the keys it is told to; the others are read from the server", async () => {
    await mine.create("plain.one", { count: 1, tags: [] });
    expect((await mine.get("plain.one"))?.value.count).toBe(1);
    const entry = await mine.get("plain.one");
    await theirs.update("plain.one", { count: 2, tags: [] }, entry?.revision ?? 0);
    expect((await mine.get("plain.one"))?.value.count).toBe(2);
  });

  it("forgets what it held when the bucket is made anew under it", async () => {
    // Nobody may delete or purge a stream (FORBIDDEN_JS_API); an operator still can, outside.
    await mine.create("gone", { count: 1, tags: [] });
    expect((await theirs.get("gone"))?.value.count).toBe(1);
    await harness.bus.jsm.streams.delete(`KV_${qualifiedName(harness.bus.ns, "mirrored")}`);
    await provision(harness.bus, {
      ...SAFEDEPLOY_TOPOLOGY,
      buckets: [{ name: "mirrored", history: 1, description: "test" }],
    });
    await mine.create("new", { count: 1, tags: [] });
    expect(await theirs.get("gone")).toBeNull();
    expect(await mine.get("gone")).toBeNull();
    expect((await theirs.get("new"))?.value.count).toBe(1);
  });

  it("answers nothing once it cannot reach the server, not what it last knew", async () => {
    await mine.create("last-known", { count: 1, tags: [] });
    expect((await theirs.get("last-known"))?.value.count).toBe(1);
    await other.close();
    await expect(theirs.get("last-known")).rejects.toThrow();
  });

  it("refuses an invalid key, naming it", async () => {
    await expect(mine.get("two..dots")).rejects.toThrow(/invalid key "two..dots"/);
  });
});
