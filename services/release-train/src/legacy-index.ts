import { KvConflictError, openKv } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { z } from "zod";
import type { TrainDeps } from "./deps.js";
import { TrainListing, claimKey, listingKey } from "./store.js";

/** Where every train was listed before one key per train: `{ trains: [...] }` under `index`. */
export const LEGACY_INDEX_KEY = "index";
const LegacyTrainIndex = z.object({ trains: z.array(TrainListing) });

/**
 * Lists the trains of a bucket written before one key per train (`index`) under their own keys,
 * claims the names of the active ones, then drops `index`: an upgrade keeps advancing a running
 * train instead of forgetting it. Idempotent, and safe for replicas doing it at once (each write
 * keeps what is there). Returns how many trains it listed.
 */
export async function migrateLegacyIndex(
  bus: Bus,
  deps: Pick<TrainDeps, "listings" | "claims">,
): Promise<number> {
  const legacy = await openKv(bus, "trains", LegacyTrainIndex);
  const index = await legacy.get(LEGACY_INDEX_KEY);
  if (index === null) return 0;
  for (const train of index.value.trains) {
    await deps.listings.mutate(listingKey(train.id), (current) =>
      current === null ? train : undefined,
    );
    if (train.active) {
      await deps.claims.mutate(claimKey(train.name), (current) =>
        current === null ? { trainId: train.id, at: train.createdAt } : undefined,
      );
    }
  }
  try {
    await legacy.remove(LEGACY_INDEX_KEY, index.revision);
  } catch (error) {
    // Another replica migrated (or rewrote) it meanwhile: what it holds is listed already.
    if (!(error instanceof KvConflictError)) throw error;
  }
  return index.value.trains.length;
}
