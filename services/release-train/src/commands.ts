import { decideClaim, newestTrains, planTrain, startTrain, trainsToForget } from "@safedeploy/core";
import type { ClaimDecision, TrainPlan } from "@safedeploy/core";
import { CommandFailedError, mutate } from "@safedeploy/jetstream";
import type {
  CommandRequest,
  CommandResult,
  ReleaseTrainDocument,
  TrainView,
} from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { listedTrains, manifestEvent } from "./driver.js";
import { claimKey, listingKey } from "./store.js";
import type { TrainRecord } from "./store.js";
import { toTrainView } from "./view.js";

type StartRequest = CommandRequest<"train.start">;

function documentOf(deps: TrainDeps, train: StartRequest["train"]): ReleaseTrainDocument {
  if (typeof train !== "string") return train;
  const found = deps.catalogTrains.get(train);
  if (found === undefined)
    throw new CommandFailedError("not_found", `no release train named ${train} in the catalog`);
  return found;
}

/** The train's plan against the catalog's services and policies, every unplannable step named. */
function planOf(deps: TrainDeps, document: ReleaseTrainDocument): TrainPlan {
  const planned = planTrain(document, [...deps.services.values()]);
  if (planned.ok) return planned.plan;
  throw new CommandFailedError(
    "invalid_request",
    planned.errors.map((e) => e.message).join("; "),
    planned.errors.map((e) => ({ field: `spec.steps[${e.step}].service`, message: e.message })),
  );
}

/**
 * Claims the train's name for `trainId` by compare-and-set on `running.<name>`: of two replicas
 * racing to start the same name, exactly one wins; the other (and any later start while that
 * train runs) gets a conflict. A claim whose train no longer runs is taken over.
 */
async function claimName(deps: TrainDeps, name: string, trainId: string): Promise<void> {
  const key = claimKey(name);
  const seen = await deps.claims.get(key);
  const holder = seen === null ? null : await deps.trains.get(seen.value.trainId);
  const staleId =
    seen !== null && holder?.value.state.status !== "running" ? seen.value.trainId : null;
  const now = deps.now();
  const { result } = await mutate(deps.claims, key, (current) => {
    const decision: ClaimDecision = decideClaim({
      ...{ name, staleId, trainId, now },
      current: current?.value ?? null,
    });
    return { next: decision.kind === "claim" ? decision.claim : undefined, result: decision };
  });
  if (result.kind === "conflict") throw new CommandFailedError("conflict", result.message);
}

function newRecord(
  deps: TrainDeps,
  request: StartRequest,
  document: ReleaseTrainDocument,
  plan: TrainPlan,
): TrainRecord {
  const id = deps.newTrainId();
  const now = deps.now();
  const { dryRun, actor } = request;
  const decision = startTrain({
    trainId: id,
    plan,
    dryRun,
    haltOn: request.haltOn ?? "fatal",
    now,
  });
  return {
    ...{ id, document, actor, createdAt: now, updatedAt: now, state: decision.state },
    outbox: [...decision.events, manifestEvent(decision.state, now)],
    pending: [...decision.actions],
    ...{ promotions: {}, hookOutcomes: {}, decisions: {}, evidence: {}, revert: null },
    ...{ guards: {}, lease: null },
  };
}

/** Drops what core's retention says: the listing and the record of old finished trains. */
async function applyRetention(deps: TrainDeps): Promise<void> {
  for (const id of trainsToForget(await listedTrains(deps), deps.now())) {
    for (const kv of [deps.listings, deps.trains] as const) {
      const key = kv === deps.listings ? listingKey(id) : id;
      const entry = await kv.get(key);
      if (entry !== null) await kv.remove(key, entry.revision).catch(() => undefined);
    }
  }
}

/**
 * `train.start`: plans the train against the catalog's services and their effective policies
 * (every unplannable step reported), claims its name (a real run only: one running train per
 * name), stores the started train and lists it as active; the driver (any replica) takes it
 * from there. Finished trains beyond the retention are dropped.
 */
export const startTrainCommand =
  (deps: TrainDeps, kick: (trainId: string) => void) =>
  async (request: StartRequest): Promise<TrainView> => {
    const document = documentOf(deps, request.train);
    const plan = planOf(deps, document);
    const record = newRecord(deps, request, document, plan);
    const name = document.metadata.name;
    if (!request.dryRun) await claimName(deps, name, record.id);
    await deps.trains.create(record.id, record);
    const listing = { id: record.id, name, createdAt: record.createdAt, active: true };
    await deps.listings.create(listingKey(record.id), listing);
    const { dryRun, haltOn, actor } = request;
    deps.log.info({ train: record.id, name, dryRun, haltOn, actor }, "release train started");
    kick(record.id);
    await applyRetention(deps).catch((error: unknown) => {
      deps.log.warn({ err: error }, "train retention failed; retried at the next start");
    });
    return toTrainView(record);
  };

/** `train.status`: one train, or `not_found`. */
export const trainStatusCommand =
  (deps: TrainDeps) =>
  async (request: CommandRequest<"train.status">): Promise<TrainView> => {
    const entry = await deps.trains.get(request.trainId);
    if (entry === null)
      throw new CommandFailedError("not_found", `no release train ${request.trainId}`);
    return toTrainView(entry.value);
  };

/** `train.list`: the most recent trains, newest first. */
export const trainListCommand =
  (deps: TrainDeps) =>
  async (request: CommandRequest<"train.list">): Promise<CommandResult<"train.list">> => {
    const newest = newestTrains(await listedTrains(deps), request.limit);
    const items: TrainView[] = [];
    for (const listed of newest) {
      const entry = await deps.trains.get(listed.id);
      if (entry !== null) items.push(toTrainView(entry.value));
    }
    return { items };
  };
