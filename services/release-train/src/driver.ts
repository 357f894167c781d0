import { createHash } from "node:crypto";
import { decideTrain, dueTrainEvent, isTrainActive, releaseManifest } from "@safedeploy/core";
import type { TrainEvent, TrainState } from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { Revisioned } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, NewEvent } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { performAction } from "./effects.js";
import type { ActionResult } from "./effects.js";
import { listingKey } from "./store.js";
import type { OutboxEvent, TrainListing, TrainRecord } from "./store.js";

/** The manifest event of a state: its id names the manifest's content, so repeats dedup. */
export function manifestEvent(
  state: TrainState,
  at: string,
): NewEvent<"governance.train-manifest"> {
  const manifest = releaseManifest(state);
  const digest = createHash("sha256").update(JSON.stringify(manifest)).digest("hex").slice(0, 16);
  return {
    type: "governance.train-manifest",
    id: messageId("governance.train-manifest", state.trainId, digest),
    service: state.plan.train,
    data: { trainId: state.trainId, at, manifest: { ...manifest } },
  };
}

/** Folds one state-machine event into the record: new state, events to publish, actions to do. */
export function applyEvent(record: TrainRecord, event: TrainEvent, at: string): TrainRecord {
  const decision = decideTrain(record.state, event, at);
  if (!decision.changed) return record;
  return {
    ...record,
    state: decision.state,
    outbox: [...record.outbox, ...decision.events, manifestEvent(decision.state, at)],
    pending: [...record.pending, ...decision.actions],
  };
}

function applyResult(record: TrainRecord, result: ActionResult, now: string): TrainRecord {
  let next: TrainRecord = { ...record, pending: record.pending.slice(1) };
  if (result.evidence !== undefined)
    next = { ...next, evidence: { ...next.evidence, ...result.evidence } };
  if (result.revert !== undefined) next = { ...next, revert: result.revert };
  if (result.guard !== undefined) {
    next = { ...next, guards: { ...next.guards, [result.guard.service]: result.guard.guardId } };
  }
  if (result.event !== undefined) next = applyEvent(next, result.event, now);
  return next;
}

function envelopeOf(record: TrainRecord, event: OutboxEvent): Envelope {
  return createEnvelope(event as NewEvent<"governance.train-step">, {
    source: "release-train",
    time: record.updatedAt,
    correlationId: record.id,
  });
}

/** The outcome of one {@link advanceTrain}: done for now, or another replica holds the train. */
export type AdvanceOutcome = "idle" | "held" | "missing";

/** A train claimed by this replica: its last saved entry, and how to save or renew it. */
interface Claim {
  readonly entry: () => Revisioned<TrainRecord>;
  readonly save: (value: TrainRecord) => Promise<void>;
  /** Stops renewing the lease, waits for the writes in flight, and releases the lease. */
  readonly release: () => Promise<void>;
}

const leaseOf = (deps: TrainDeps) => ({
  owner: deps.owner,
  until: new Date(Date.parse(deps.now()) + deps.leaseMs).toISOString(),
});

/**
 * Claims a train (a lease written by compare-and-set, so one replica at a time) and renews the
 * lease every third of it while the pass runs: saves and renewals write one after another, each
 * on the last revision, so a renewal lost to another replica makes the pass's next save fail.
 */
async function claimTrain(deps: TrainDeps, trainId: string): Promise<Claim | "held" | "missing"> {
  const claimed = await deps.trains.mutate(trainId, (current) => {
    if (current === null) return undefined;
    const lease = current.value.lease;
    if (lease !== null && lease.owner !== deps.owner && lease.until > deps.now()) return undefined;
    return { ...current.value, lease: leaseOf(deps) };
  });
  if (claimed.entry === null) return "missing";
  if (!claimed.changed) return "held";
  let entry: Revisioned<TrainRecord> = claimed.entry;
  let writes: Promise<unknown> = Promise.resolve();
  const write = (value: () => TrainRecord): Promise<void> => {
    const next = writes.then(async () => {
      const written = value();
      entry = {
        value: written,
        revision: await deps.trains.update(trainId, written, entry.revision),
      };
    });
    writes = next.catch(() => undefined);
    return next;
  };
  const renewal = setInterval(() => {
    // Lost to another replica: the pass's next save says so.
    write(() => ({ ...entry.value, lease: leaseOf(deps) })).catch(() => undefined);
  }, deps.leaseMs / 3);
  renewal.unref();
  return {
    entry: () => entry,
    save: (value) => write(() => value),
    release: async () => {
      clearInterval(renewal);
      await writes;
      await deps.trains
        .update(trainId, { ...entry.value, lease: null }, entry.revision)
        .catch(() => undefined);
    },
  };
}

/**
 * One durable step of a claimed train: publish its outbox, do its next pending action, or feed
 * the state machine what is due (core's `dueTrainEvent`), saving after it; false when nothing
 * is left to do now.
 */
async function step(deps: TrainDeps, claim: Claim, log: TrainDeps["log"]): Promise<boolean> {
  const record = claim.entry().value;
  const now = deps.now();
  const stamp = { lease: leaseOf(deps), updatedAt: now };
  if (record.outbox.length > 0) {
    for (const event of record.outbox) await deps.publish(envelopeOf(record, event));
    await claim.save({ ...record, outbox: [], ...stamp });
    return true;
  }
  const action = record.pending[0];
  if (action !== undefined) {
    log.debug({ action: action.kind }, "performing");
    const result = await performAction(deps, record, action);
    await claim.save({ ...applyResult(record, result, now), ...stamp });
    return true;
  }
  const due = dueTrainEvent(record, now);
  if (due === null) return false;
  const next = applyEvent(record, due.event, due.at);
  if (next === record) {
    log.warn({ event: due.event }, "the state machine ignored a due event");
    return false;
  }
  await claim.save({ ...next, ...stamp });
  return true;
}

/** Marks a train's listing inactive once it has no work left (it is then left alone). */
async function delist(deps: TrainDeps, record: TrainRecord): Promise<void> {
  if (isTrainActive(record)) return;
  await deps.listings.mutate(listingKey(record.id), (current) =>
    current?.value.active === true ? { ...current.value, active: false } : undefined,
  );
}

/**
 * Advances one train as far as it can go now, one durable step at a time (see {@link step}),
 * saving with compare-and-set after each, under a lease (see {@link claimTrain}). The lease is
 * short and renewed while the pass runs (checks can take longer than a lease), so a replica that
 * dies holds a train up for one lease at most; it leaves the record at its last save and the next
 * one resumes there, redoing at most one idempotent effect.
 */
export async function advanceTrain(deps: TrainDeps, trainId: string): Promise<AdvanceOutcome> {
  const claim = await claimTrain(deps, trainId);
  if (typeof claim === "string") return claim;
  const log = deps.log.child({ train: trainId });
  try {
    for (let round = 0; round < 1_000; round += 1) {
      if (!(await step(deps, claim, log))) break;
    }
  } catch (error) {
    if (error instanceof KvConflictError) {
      log.warn({}, "the train moved under this replica; leaving it");
      await claim.release();
      return "held";
    }
    log.warn({ err: error }, "release train step failed; retrying on a later tick");
  }
  await claim.release();
  await delist(deps, claim.entry().value);
  return "idle";
}

/** Every listed train (listings that vanished between the key scan and the read are skipped). */
export async function listedTrains(deps: TrainDeps): Promise<TrainListing[]> {
  const ids = await deps.listedTrainIds();
  const entries = await Promise.all(ids.map((id) => deps.listings.get(listingKey(id))));
  return entries.flatMap((entry) => (entry === null ? [] : [entry.value]));
}

/** The trains some replica must advance. */
export async function activeTrains(deps: TrainDeps): Promise<string[]> {
  return (await listedTrains(deps)).filter((t) => t.active).map((t) => t.id);
}
