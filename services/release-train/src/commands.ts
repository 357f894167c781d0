import { planTrain, startTrain } from "@safedeploy/core";
import { CommandFailedError } from "@safedeploy/jetstream";
import type {
  CommandRequest,
  CommandResult,
  ReleaseTrainDocument,
  TrainView,
} from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { manifestEvent } from "./driver.js";
import { INDEX_KEY } from "./store.js";
import type { TrainRecord } from "./store.js";
import { toTrainView } from "./view.js";

function documentOf(deps: TrainDeps, train: CommandRequest<"train.start">["train"]) {
  if (typeof train !== "string") return train;
  const found = deps.catalogTrains.get(train);
  if (found === undefined)
    throw new CommandFailedError("not_found", `no release train named ${train} in the catalog`);
  return found;
}

/**
 * `train.start`: plans the train against the catalog's services and their effective policies
 * (every unplannable step reported), refuses a second run of a train that is still running,
 * stores the started train and lists it as active; the driver (any replica) takes it from there.
 */
export const startTrainCommand =
  (deps: TrainDeps, kick: (trainId: string) => void) =>
  async (request: CommandRequest<"train.start">): Promise<TrainView> => {
    const document: ReleaseTrainDocument = documentOf(deps, request.train);
    const planned = planTrain(document, [...deps.services.values()]);
    if (!planned.ok) {
      throw new CommandFailedError(
        "invalid_request",
        planned.errors.map((e) => e.message).join("; "),
        planned.errors.map((e) => ({ field: `spec.steps[${e.step}].service`, message: e.message })),
      );
    }
    const name = document.metadata.name;
    const index = await deps.index.get(INDEX_KEY);
    for (const listed of index?.value.trains ?? []) {
      if (listed.name !== name || !listed.active) continue;
      const other = await deps.trains.get(listed.id);
      if (other?.value.state.status === "running" && !other.value.state.dryRun && !request.dryRun) {
        throw new CommandFailedError(
          "conflict",
          `release train ${name} is already running as ${listed.id}`,
        );
      }
    }
    const trainId = deps.newTrainId();
    const now = deps.now();
    const decision = startTrain({
      trainId,
      plan: planned.plan,
      dryRun: request.dryRun,
      haltOn: request.haltOn ?? "fatal",
      now,
    });
    const record: TrainRecord = {
      id: trainId,
      document,
      actor: request.actor,
      createdAt: now,
      updatedAt: now,
      state: decision.state,
      outbox: [...decision.events, manifestEvent(decision.state, now)],
      pending: [...decision.actions],
      promotions: {},
      hookOutcomes: {},
      decisions: {},
      evidence: {},
      revert: null,
      guards: {},
      lease: null,
    };
    await deps.trains.create(trainId, record);
    await deps.index.mutate(INDEX_KEY, (current) => ({
      trains: [
        ...(current?.value.trains ?? []).filter((t) => t.id !== trainId),
        { id: trainId, name, createdAt: now, active: true },
      ],
    }));
    deps.log.info(
      {
        train: trainId,
        name,
        dryRun: request.dryRun,
        haltOn: request.haltOn,
        actor: request.actor,
      },
      "release train started",
    );
    kick(trainId);
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
    const index = await deps.index.get(INDEX_KEY);
    const newest = [...(index?.value.trains ?? [])]
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, request.limit);
    const items: TrainView[] = [];
    for (const listed of newest) {
      const entry = await deps.trains.get(listed.id);
      if (entry !== null) items.push(toTrainView(entry.value));
    }
    return { items };
  };
