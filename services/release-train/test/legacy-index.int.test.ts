import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKv, provision } from "@safedeploy/jetstream";
import { createTestBus } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { z } from "zod";
import { LEGACY_INDEX_KEY, migrateLegacyIndex } from "../src/legacy-index.js";
import { TrainClaim, TrainListing, claimKey, listingKey } from "../src/store.js";

/* A bucket written before one key per train: its trains are listed anew, once, by any replica. */
let harness: TestBus;

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
});

afterAll(async () => {
  await harness.cleanup();
});

describe("the single train index of earlier versions", () => {
  it("is listed one key per train, the running train keeps its name, and the index is dropped", async () => {
    const legacy = await openKv(harness.bus, "trains", z.object({ trains: z.array(TrainListing) }));
    const running = {
      id: "TRN-A1",
      name: "weekly",
      createdAt: "2026-12-01T10:00:00.000Z",
      active: true,
    };
    const done = {
      id: "TRN-A0",
      name: "weekly",
      createdAt: "2026-11-24T10:00:00.000Z",
      active: false,
    };
    await legacy.create(LEGACY_INDEX_KEY, { trains: [done, running] });
    const deps = {
      listings: await openKv(harness.bus, "trains", TrainListing),
      claims: await openKv(harness.bus, "trains", TrainClaim),
    };
    // Two replicas starting at once, then a restart: listed once, nothing lost.
    const counts = await Promise.all([
      migrateLegacyIndex(harness.bus, deps),
      migrateLegacyIndex(harness.bus, deps),
    ]);
    expect(counts).toContain(2);
    expect(await migrateLegacyIndex(harness.bus, deps)).toBe(0);
    expect((await deps.listings.get(listingKey("TRN-A1")))?.value).toEqual(running);
    expect((await deps.listings.get(listingKey("TRN-A0")))?.value).toEqual(done);
    expect((await deps.claims.get(claimKey("weekly")))?.value).toEqual({
      trainId: "TRN-A1",
      at: running.createdAt,
    });
    expect(await legacy.get(LEGACY_INDEX_KEY)).toBeNull();
  });
});
