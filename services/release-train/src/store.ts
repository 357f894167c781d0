import type {
  TrainAction,
  TrainClaim as CoreTrainClaim,
  TrainListing as CoreTrainListing,
  TrainNewEvent,
  TrainState,
} from "@safedeploy/core";
import { ReleaseTrainDocument } from "@safedeploy/schema";
import type { NewEvent } from "@safedeploy/schema";
import { z } from "zod";

/**
 * The core's train state, as this service alone writes it. Checked for its shape's anchors only:
 * the rest is core's `TrainState`, produced by `startTrain`/`decideTrain` and never edited here.
 */
const StoredTrainState = z.custom<TrainState>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    typeof (value as { trainId?: unknown }).trainId === "string" &&
    Array.isArray((value as { steps?: unknown }).steps) &&
    typeof (value as { plan?: unknown }).plan === "object",
  { message: "not a train state" },
);

/** An event the train decided to publish: the state machine's, or its manifest. */
export type OutboxEvent = TrainNewEvent | NewEvent<"governance.train-manifest">;

/** What the git actuator reported for a step's promotion or manifest hook (`action-completed|failed`). */
export const PromotionOutcome = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("completed"),
    at: z.string(),
    branch: z.string(),
    commit: z.string(),
    prUrl: z.string().nullable(),
    diff: z.string(),
    dryRun: z.boolean(),
  }),
  z.object({
    kind: z.literal("failed"),
    at: z.string(),
    reason: z.string(),
    /** The repo already was as asked: nothing was committed. */
    unchanged: z.boolean().optional(),
  }),
]);
export type PromotionOutcome = z.infer<typeof PromotionOutcome>;

/**
 * A person's decision on a step's promotion proposal, as the proposal service published it
 * (`governance.proposal-approved` / `-rejected`); `approved`: the approvals are now complete.
 */
export const ProposalDecision = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("approved"),
    by: z.string(),
    at: z.string(),
    reason: z.string(),
    required: z.number().int().positive(),
    approved: z.boolean(),
  }),
  z.object({ kind: z.literal("rejected"), by: z.string(), at: z.string(), reason: z.string() }),
]);
export type ProposalDecision = z.infer<typeof ProposalDecision>;

/** The guard evidence of one step's latest checks (health, regression, gate), for the views. */
const StepEvidence = z.array(z.unknown());

/**
 * One train (key: its id). `state` is core's; `outbox` holds decided events not yet known to be
 * published and `pending` the decided actions not yet done, so a replica that dies between a
 * decision and its effects leaves them for the next one (every effect is idempotent). Timers are
 * the due times inside `state` (a step's `guardUntil`, a follow-up's `dueAt`), checked on a tick.
 */
export const TrainRecord = z.object({
  id: z.string(),
  document: ReleaseTrainDocument,
  actor: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  state: StoredTrainState,
  outbox: z.array(z.custom<OutboxEvent>()),
  pending: z.array(z.custom<TrainAction>()),
  /** Per step index (as a string): the actuator's report of its promotion. */
  promotions: z.record(z.string(), PromotionOutcome),
  /** Per manifest hook action id (`<trainId>-s<n>-<hook>`): the actuator's report of it. */
  hookOutcomes: z.record(z.string(), PromotionOutcome).default({}),
  /**
   * Per step index: the decisions people made on its promotion proposal, in the order this
   * service heard of them (one per person and kind); the driver feeds them to the state machine.
   */
  decisions: z.record(z.string(), z.array(ProposalDecision)).default({}),
  /** Per step index: the evidence of its last checks. */
  evidence: z.record(z.string(), StepEvidence),
  /** The revert proposed for the one failing step, if any. */
  revert: z
    .object({ proposalId: z.string(), service: z.string(), step: z.number().int() })
    .nullable(),
  /**
   * The guards this train failed (`guard.fail`): `service` → guard id. The service's gate blocks
   * until its revert is executed or an approver clears it.
   */
  guards: z.record(z.string(), z.string()).default({}),
  /** The replica advancing the train now, until when; others leave it alone until it expires. */
  lease: z.object({ owner: z.string(), until: z.string() }).nullable(),
});
export type TrainRecord = z.infer<typeof TrainRecord>;

/**
 * Key `listed.<trainId>` ({@link listingKey}): one train in the index, kept by core's
 * `TRAIN_RETENTION` (active trains always; finished ones while among the newest and not too old).
 */
export const TrainListing = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  active: z.boolean(),
}) satisfies z.ZodType<CoreTrainListing>;
export type TrainListing = z.infer<typeof TrainListing>;

/** Key `running.<name>` ({@link claimKey}): the train running under a name (compare-and-set). */
export const TrainClaim = z.object({
  trainId: z.string(),
  at: z.string(),
}) satisfies z.ZodType<CoreTrainClaim>;
export type TrainClaim = z.infer<typeof TrainClaim>;

export const LISTING_PREFIX = "listed.";
export const listingKey = (trainId: string): string => `${LISTING_PREFIX}${trainId}`;
export const claimKey = (name: string): string => `running.${name}`;
