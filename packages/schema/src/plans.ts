import { z } from "zod";
import type { ProposalKind } from "./domain.js";
import { Timestamp } from "./primitives.js";

/**
 * What approving a proposal does in the environment repo: one inert, typed plan per action, made
 * by core, carried on the wire, parsed by the git actuator. Paths are relative to the repo.
 */

/** A path inside the environment repo: relative, no `..` or `.` segment, no leading `/` or `-`. */
export const PlanPath = z
  .string()
  .min(1)
  .max(1_024)
  .refine(
    (path) =>
      !path.startsWith("/") &&
      !path.startsWith("-") &&
      !path.split("/").some((segment) => segment === ".." || segment === ".") &&
      !/[\0\n\r]/.test(path),
    { message: "must be a relative path inside the repository" },
  );

const Weight = z.number().int().min(0).max(100);

/** `rollback-rollout`: revert the newest change under the service's path. */
export const RevertPlan = z.object({
  action: z.literal("git-revert"),
  path: PlanPath,
  /** When the burn began: a commit made after it cannot be the cause and is never reverted. */
  burnBegan: Timestamp.optional(),
  /** The commit a release train's revert undoes, when known. */
  commit: z.string().max(64).optional(),
  /**
   * The environment-repo revision live when the burn began, from deploy events (Argo CD's
   * `on-deployed`): the commit to revert is the newest under the path at or below it, even when
   * the repo alone cannot tell (a later commit, made after the burn began, not synced yet).
   */
  liveRevision: z
    .string()
    .regex(/^[0-9a-f]{7,40}$/, { message: "must be a commit SHA (7 to 40 lowercase hex digits)" })
    .optional(),
});
export type RevertPlan = z.infer<typeof RevertPlan>;

/** `promote-canary`: set the first canary step's weight of the Rollout under the path. */
export const CanaryWeightPlan = z.object({
  action: z.literal("set-canary-weight"),
  path: PlanPath,
  from: Weight,
  to: Weight,
});
export type CanaryWeightPlan = z.infer<typeof CanaryWeightPlan>;

/** `block-promotion` with a manifest path: pause the Rollout (`spec.paused: true`). */
export const PausePlan = z.object({
  action: z.literal("pause-rollout"),
  path: PlanPath,
  reasons: z.array(z.string()),
});
export type PausePlan = z.infer<typeof PausePlan>;

/** `block-promotion` of a service with no manifest path: recorded, nothing committed. */
export const RecordOnlyPlan = z.object({
  action: z.literal("record-only"),
  reasons: z.array(z.string()),
});
export type RecordOnlyPlan = z.infer<typeof RecordOnlyPlan>;

/** `promote-release`: set the image of the workload container under the path. */
export const ImagePlan = z.object({
  action: z.literal("set-image"),
  path: PlanPath,
  image: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[^\s"'\\]+$/, { message: "must be an image reference" }),
  container: z.string().min(1).max(253).optional(),
});
export type ImagePlan = z.infer<typeof ImagePlan>;

/**
 * `promote-release`: a JSON merge patch of the workload under the path (a train's patch step, or
 * a strategy's manifest hook, which `hook` names).
 */
export const PatchPlan = z.object({
  action: z.literal("patch-manifest"),
  path: PlanPath,
  patch: z.record(z.string(), z.json()).refine((patch) => Object.keys(patch).length > 0, {
    message: "must change something",
  }),
  hook: z.enum(["promote", "cutover", "rollback"]).optional(),
});
export type PatchPlan = z.infer<typeof PatchPlan>;

/** Every plan a proposal or an action may carry, by its `action`. */
export const ProposalPlan = z.discriminatedUnion("action", [
  RevertPlan,
  CanaryWeightPlan,
  PausePlan,
  RecordOnlyPlan,
  ImagePlan,
  PatchPlan,
]);
export type ProposalPlan = z.infer<typeof ProposalPlan>;
export type PlanAction = ProposalPlan["action"];

/** Which plans each proposal kind may carry: anything else is refused at the actuator. */
export const PLAN_ACTIONS: Readonly<Record<ProposalKind, readonly PlanAction[]>> = {
  "rollback-rollout": ["git-revert"],
  "promote-canary": ["set-canary-weight"],
  "block-promotion": ["pause-rollout", "record-only"],
  "promote-release": ["set-image", "patch-manifest"],
};

/** Whether a plan fits the kind of proposal it came with. */
export function planFitsKind(kind: ProposalKind, plan: ProposalPlan): boolean {
  return PLAN_ACTIONS[kind].includes(plan.action);
}
