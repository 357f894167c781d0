// The one read-decide-write primitive against a real JetStream KV bucket: racing writers
// converge, a key that keeps moving gives up with a retryable conflict, and an outbox left by a
// crash is flushed before anything else is decided.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { KvConflictError, mutate, openKv, provision } from "@safedeploy/jetstream";
import type { Revisioned, TypedKv } from "@safedeploy/jetstream";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { createTestBus } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";

const Counter = z.object({ count: z.number(), outbox: z.array(z.string()) });
type Counter = z.infer<typeof Counter>;

let harness: TestBus;
let kv: TypedKv<Counter>;

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus, {
    ...SAFEDEPLOY_TOPOLOGY,
    buckets: [{ name: "mutations", history: 1, description: "test" }],
  });
  kv = await openKv(harness.bus, "mutations", Counter);
});

afterAll(async () => {
  await harness.cleanup();
});

const bump = (current: Revisioned<Counter> | null) => {
  const count = (current?.value.count ?? 0) + 1;
  return { next: { count, outbox: [] }, result: count };
};

describe("mutate", () => {
  it("serialises 20 racing writers: every increment lands once, each sees its own result", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => mutate(kv, "racy", bump, { maxAttempts: 60 })),
    );
    expect((await kv.get("racy"))?.value.count).toBe(20);
    expect(results.map((r) => r.result).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(results.every((r) => r.changed)).toBe(true);
  });

  it("writes nothing when the decision says so, and returns the entry it read", async () => {
    await kv.create("still", { count: 7, outbox: [] });
    const kept = await mutate(kv, "still", (current) => ({
      next: undefined,
      result: current?.value.count,
    }));
    expect(kept).toMatchObject({ changed: false, result: 7, entry: { value: { count: 7 } } });
  });

  it("gives up on a key that keeps moving with a retryable conflict, after jittered waits", async () => {
    await kv.create("moving", { count: 0, outbox: [] });
    // Another writer moves the key between every read and write of this one.
    const contested: TypedKv<Counter> = {
      ...kv,
      update: async (key, value, revision) => {
        const entry = await kv.get(key);
        await kv.update(key, { count: 100, outbox: [] }, entry!.revision);
        return kv.update(key, value, revision);
      },
    };
    const waits: number[] = [];
    const error = await mutate(contested, "moving", bump, {
      maxAttempts: 3,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      backoffMs: (attempt) => attempt * 10,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvConflictError);
    expect((error as KvConflictError).retryable).toBe(true);
    expect(waits).toEqual([10, 20]);
    // The default waits are jittered and bounded.
    const calm = await mutate(kv, "moving", bump);
    expect(calm.changed).toBe(true);
  });

  it("flushes an outbox a crash left before deciding, and the new one after writing", async () => {
    await kv.create("outbox", { count: 1, outbox: ["left-by-a-crash"] });
    const published: string[] = [];
    const outbox = {
      pending: (value: Counter) => value.outbox.length > 0,
      flush: async (entry: Revisioned<Counter>) => {
        published.push(...entry.value.outbox);
        await kv.update("outbox", { ...entry.value, outbox: [] }, entry.revision);
      },
    };
    const seen: number[] = [];
    await mutate(
      kv,
      "outbox",
      (current) => {
        seen.push(current?.value.outbox.length ?? -1);
        return { next: { count: 2, outbox: ["decided"] }, result: undefined };
      },
      { outbox },
    );
    expect(seen).toEqual([0]);
    expect(published).toEqual(["left-by-a-crash", "decided"]);
    expect((await kv.get("outbox"))?.value).toEqual({ count: 2, outbox: [] });
  });
});
