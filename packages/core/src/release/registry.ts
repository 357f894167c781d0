/**
 * Which trains exist and which run: one claim per train name (so two replicas racing to start
 * the same train cannot both win) and one listing per train, with retention.
 */

/** Who runs a train name now (key `running.<name>`); a dry run never claims a name. */
export interface TrainClaim {
  readonly trainId: string;
  readonly at: string;
}

/** One train in the index (key `listed.<trainId>`): `active` ones are advanced on each tick. */
export interface TrainListing {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly active: boolean;
}

/**
 * How long finished trains stay listed (and stored): the newest {@link keepFinished} of them,
 * and none older than {@link maxAgeMs}. Active trains are always kept.
 */
export const TRAIN_RETENTION = { keepFinished: 200, maxAgeMs: 30 * 24 * 60 * 60 * 1000 } as const;

/** What a start decides of a name's claim: take it (compare-and-set), or a conflict. */
export type ClaimDecision =
  | { readonly kind: "claim"; readonly claim: TrainClaim }
  | { readonly kind: "conflict"; readonly runningId: string; readonly message: string };

/**
 * Whether train `trainId` may claim `name`: the name is free, or its claim names `staleId` (a
 * train the caller found no longer running). Pure, so a compare-and-set loop may decide again
 * on the claim another replica just wrote — which then names a running train: a conflict.
 */
export function decideClaim(input: {
  readonly name: string;
  readonly current: TrainClaim | null;
  readonly staleId: string | null;
  readonly trainId: string;
  readonly now: string;
}): ClaimDecision {
  const { current, name } = input;
  if (current === null || current.trainId === input.staleId) {
    return { kind: "claim", claim: { trainId: input.trainId, at: input.now } };
  }
  return {
    kind: "conflict",
    runningId: current.trainId,
    message: `train ${name} is already running as ${current.trainId}`,
  };
}

/**
 * The finished trains retention drops: beyond the newest `keepFinished`, or started more than
 * `maxAgeMs` before `now`. Never an active one.
 */
export function trainsToForget(
  listings: readonly TrainListing[],
  now: string,
  retention: { readonly keepFinished: number; readonly maxAgeMs: number } = TRAIN_RETENTION,
): string[] {
  const oldest = Date.parse(now) - retention.maxAgeMs;
  const finished = listings
    .filter((l) => !l.active)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  return finished
    .filter((l, rank) => rank >= retention.keepFinished || Date.parse(l.createdAt) < oldest)
    .map((l) => l.id);
}

/** The newest `limit` listings, newest first. */
export function newestTrains(listings: readonly TrainListing[], limit: number): TrainListing[] {
  return [...listings]
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
    .slice(0, limit);
}
