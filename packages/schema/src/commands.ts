import { z } from "zod";
import { Actor, IncidentState } from "./domain.js";
import { ReleaseTrainDocument } from "./catalog.js";
import { EVENT_DATA } from "./events.js";
import { ImagePlan, PatchPlan } from "./plans.js";
import { HttpUrl, ResourceName, Timestamp } from "./primitives.js";
import {
  CanaryView,
  FreezeView,
  GateView,
  GuardView,
  IncidentView,
  ProposalView,
  TrainView,
} from "./views.js";

/** A deploy event's data (`governance.deploy-recorded`). */
export const DeployRecord = EVENT_DATA["governance.deploy-recorded"];

const Reason = z.string().trim().min(1, { message: "a reason is required" }).max(2000);

/**
 * Commands travel by request/reply (not stored); their effects are stored as events by the
 * service that owns the state. Each entry is the request body and the result of success.
 */
export const COMMANDS = {
  "proposal.approve": {
    request: z.object({ proposalId: z.string().min(1), by: Actor, reason: Reason }),
    result: ProposalView,
  },
  "proposal.reject": {
    request: z.object({ proposalId: z.string().min(1), by: Actor, reason: Reason }),
    result: ProposalView,
  },
  /**
   * A revert of one service's path proposed by another service (a release train whose step
   * failed): a pending rollback-rollout proposal a person approves, one per (service, cause).
   */
  "proposal.revert": {
    request: z.object({
      service: ResourceName,
      path: z.string().min(1).max(1_024),
      /** What calls for it, e.g. `TRN-…:step-3`: the same cause always names the same proposal. */
      causeId: z.string().min(1).max(256),
      /** The commit the revert undoes, when known. */
      commit: z.string().max(64).optional(),
      reason: Reason,
      actor: Actor,
      at: Timestamp,
    }),
    result: ProposalView,
  },
  /**
   * A release train's promotion of one step, as a proposal like any other (kind
   * `promote-release`, id `<trainId>-s<n>`): created once, approved by the person who started the
   * train; it counts as approved once the service's `approvals.required` distinct people approved.
   * The train, not the proposal service, requests the change, after asking the gate again.
   */
  "proposal.promotion": {
    request: z.object({
      proposalId: z.string().min(1).max(256),
      service: ResourceName,
      trainId: z.string().min(1).max(256),
      step: z.number().int().nonnegative(),
      summary: z.string().max(2_000),
      plan: z.union([ImagePlan, PatchPlan]),
      /** Who started the train: the first approval. */
      actor: Actor,
      at: Timestamp,
    }),
    result: ProposalView,
  },
  "incident.transition": {
    request: z.object({
      incidentId: z.string().min(1),
      to: IncidentState,
      actor: Actor,
      reason: Reason,
      link: HttpUrl.optional(),
    }),
    result: IncidentView,
  },
  "freeze.create": {
    request: z.object({
      service: ResourceName,
      until: Timestamp,
      reason: Reason,
      actor: Actor,
      from: Timestamp.optional(),
    }),
    result: FreezeView,
  },
  "freeze.lift": {
    request: z.object({ service: ResourceName, actor: Actor, reason: Reason }),
    result: z.object({ lifted: z.array(FreezeView) }),
  },
  /**
   * An admin's emergency override: the service's recurring freeze windows (`kind: FreezeWindow`)
   * do not freeze it until `until` (at most 24h ahead). Manual and exhaustion freezes still do.
   */
  "freeze.override": {
    request: z.object({ service: ResourceName, until: Timestamp, reason: Reason, actor: Actor }),
    result: z.object({
      id: z.string(),
      service: ResourceName,
      from: Timestamp,
      until: Timestamp,
      reason: z.string(),
      actor: Actor,
      /** The recurring windows that froze the service when it was overridden. */
      windows: z.array(z.string()),
    }),
  },
  /** A release train's guard failed: block the service's gate until it is cleared. */
  "guard.fail": {
    request: z.object({
      service: ResourceName,
      train: ResourceName,
      trainId: z.string().min(1).max(256),
      step: z.number().int().nonnegative().nullable(),
      reason: Reason,
      evidence: z.array(z.string().max(2_000)).max(100),
      at: Timestamp,
    }),
    result: GuardView,
  },
  /** An approver clears every failed guard of a service (after triage). */
  "guard.clear": {
    request: z.object({ service: ResourceName, actor: Actor, reason: Reason }),
    result: z.object({ cleared: z.array(GuardView) }),
  },
  /** A service entered a canary step (reported by a pipeline, a release train or a person). */
  "canary.step": {
    request: z.object({
      service: ResourceName,
      weight: z.number().int().min(0).max(100),
      actor: Actor,
      reason: Reason,
      since: Timestamp.optional(),
    }),
    result: CanaryView,
  },
  "gate.query": {
    request: z.object({ service: ResourceName }),
    result: GateView,
  },
  /**
   * Start a release train: the document itself, or the name of a train in the catalog. The
   * actor starting it approves its promotions; a dry run computes every commit and pushes none.
   * `haltOn`: which check outcomes halt the train (absent: `fatal` only; `warning`: warnings too).
   */
  "train.start": {
    request: z.object({
      train: z.union([ResourceName, ReleaseTrainDocument]),
      dryRun: z.boolean().default(false),
      haltOn: z.enum(["fatal", "warning"]).optional(),
      actor: Actor,
    }),
    result: TrainView,
  },
  "train.status": {
    request: z.object({ trainId: z.string().min(1).max(256) }),
    result: TrainView,
  },
  /** The most recent trains, newest first. */
  "train.list": {
    request: z.object({ limit: z.number().int().min(1).max(500).default(100) }),
    result: z.object({ items: z.array(TrainView) }),
  },
  /**
   * Record a deploy event (Argo CD / Argo Rollouts notification, API, CLI) for a service: stored
   * once per (app, revision, trigger, step) however often it is reported; `recorded` is false
   * for a repeat.
   */
  "deploy.record": {
    request: z.object({ service: ResourceName, deploy: DeployRecord }),
    result: z.object({ id: z.string(), recorded: z.boolean(), deploy: DeployRecord }),
  },
  /** A service's recorded deploy events, oldest first (the newest 100). */
  "deploy.list": {
    request: z.object({ service: ResourceName }),
    result: z.object({ items: z.array(DeployRecord) }),
  },
} as const;

export type CommandName = keyof typeof COMMANDS;
export type CommandRequest<C extends CommandName> = z.infer<(typeof COMMANDS)[C]["request"]>;
export type CommandResult<C extends CommandName> = z.infer<(typeof COMMANDS)[C]["result"]>;

/** Why a command failed; `code` maps to an HTTP status in the gateway. */
export const CommandError = z.object({
  code: z.enum([
    "invalid_request",
    "not_found",
    "conflict",
    "forbidden",
    "unavailable",
    "internal",
  ]),
  message: z.string(),
  details: z.array(z.unknown()).optional(),
});
export type CommandError = z.infer<typeof CommandError>;

/** The reply envelope of every command. */
export function commandReply<C extends CommandName>(command: C): z.ZodType<CommandReply<C>> {
  return z.discriminatedUnion("ok", [
    z.object({ ok: z.literal(true), result: COMMANDS[command].result }),
    z.object({ ok: z.literal(false), error: CommandError }),
  ]) as unknown as z.ZodType<CommandReply<C>>;
}
export type CommandReply<C extends CommandName> =
  { ok: true; result: CommandResult<C> } | { ok: false; error: CommandError };
