import type { CatalogService } from "@safedeploy/catalog";
import type { ErrorCounts, HealthObservation } from "@safedeploy/core";
import type { TypedKv } from "@safedeploy/jetstream";
import type { Logger } from "@safedeploy/runtime";
import type {
  CommandRequest,
  Envelope,
  GateView,
  GuardView,
  HealthCheck,
  ProposalView,
  ReleaseTrainDocument,
} from "@safedeploy/schema";
import type { HookRequest, HookResponse } from "./hooks.js";
import type { TrainClaim, TrainListing, TrainRecord } from "./store.js";

/** What the release-train handlers and driver need; every effect arrives here. */
export interface TrainDeps {
  readonly services: ReadonlyMap<string, CatalogService>;
  /** The catalog's ReleaseTrain documents, by name (`train.start` may name one). */
  readonly catalogTrains: ReadonlyMap<string, ReleaseTrainDocument>;
  readonly trains: TypedKv<TrainRecord>;
  /** The index: one listing per train (`listed.<id>`), in the `trains` bucket. */
  readonly listings: TypedKv<TrainListing>;
  /** Who runs each train name (`running.<name>`), in the `trains` bucket. */
  readonly claims: TypedKv<TrainClaim>;
  /** The ids of every listed train (the `listed.` keys), in no order. */
  readonly listedTrainIds: () => Promise<string[]>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  /** `gate.query` to the policy service; throws when nobody answers (retried later). */
  readonly gate: (service: string) => Promise<GateView>;
  /** `proposal.revert` to the proposal service: the pending revert of one service's path. */
  readonly requestRevert: (request: CommandRequest<"proposal.revert">) => Promise<ProposalView>;
  /**
   * `proposal.promotion` to the proposal service: a step's promotion proposal, created once,
   * approved by the train's starter; throws when it is refused or unanswered (retried later).
   */
  readonly requestPromotion: (
    request: CommandRequest<"proposal.promotion">,
  ) => Promise<ProposalView>;
  /** `guard.fail` to the policy service: a failing service's gate blocks; throws when unanswered. */
  readonly failGuard: (request: CommandRequest<"guard.fail">) => Promise<GuardView>;
  /** One HTTP probe of a health check: what came back, or why nothing did. */
  readonly probe: (check: HealthCheck) => Promise<HealthObservation>;
  /**
   * A service's errors per series and its requests in the window before a deploy time and the one
   * after it (cut at `now`), from Prometheus; throws when Prometheus cannot answer (retried later).
   */
  readonly measureErrors: (
    service: string,
    window: { readonly deployedAt: string; readonly windowMs: number; readonly now: string },
  ) => Promise<{ readonly before: ErrorCounts; readonly after: ErrorCounts }>;
  /** One http strategy hook call (see `callHttpHook`); never throws. */
  readonly callHook: (request: HookRequest) => Promise<HookResponse>;
  readonly now: () => string;
  readonly newTrainId: () => string;
  /** This replica, as it names itself in leases. */
  readonly owner: string;
  /** How long a replica may hold a train before another may take it over. */
  readonly leaseMs: number;
  readonly log: Logger;
}
