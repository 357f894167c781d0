import type { GitChange } from "@safedeploy/git";
import { Timestamp } from "@safedeploy/schema";
import type { ProposalKind } from "@safedeploy/schema";
import { z } from "zod";

const RepoPath = z
  .string()
  .min(1)
  .max(1_024)
  .refine(
    (path) =>
      !path.startsWith("/") &&
      !path.startsWith("-") &&
      !path.split("/").some((segment) => segment === "..") &&
      !/[\0\n\r]/.test(path),
    { message: "must be a relative path inside the repository" },
  );

const Weight = z.number().int().min(0).max(100);

/**
 * The plan of an approved `rollback-rollout`: revert the service's path. `burnBegan` (ISO time):
 * since when the service burns; a commit committed after it is not reverted (it cannot be the cause).
 */
export const RevertPlan = z.object({
  action: z.literal("git-revert"),
  path: RepoPath,
  burnBegan: Timestamp.optional(),
});

/** The plan of an approved `promote-canary`: set the first canary step's weight. */
export const CanaryPlan = z.object({
  action: z.literal("set-canary-weight"),
  path: RepoPath,
  from: Weight,
  to: Weight,
});

/** The plan of an approved `block-promotion` with a manifest path: pause the Rollout. */
export const PausePlan = z.object({ action: z.literal("pause-rollout"), path: RepoPath });

/**
 * The plan of a `promote-release` (one release-train step): set the image of the service's
 * workload container under its path. An image reference: no whitespace, quotes or backslashes.
 */
export const ImagePlan = z.object({
  action: z.literal("set-image"),
  path: RepoPath,
  image: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[^\s"'\\]+$/, { message: "must be an image reference" }),
  container: z.string().min(1).max(253).optional(),
});

/** The plan of a `promote-release` whose step is a manifest patch: a JSON merge patch. */
export const PatchPlan = z.object({
  action: z.literal("patch-manifest"),
  path: RepoPath,
  patch: z.record(z.string(), z.json()).refine((patch) => Object.keys(patch).length > 0, {
    message: "must change something",
  }),
});

/** A release step's change: an image, or a manifest patch. */
export const ReleasePlan = z.discriminatedUnion("action", [ImagePlan, PatchPlan]);

/** What to do in Git for an approved action; `none` for kinds that need no commit. */
export type GitPlan =
  | { readonly kind: "change"; readonly change: GitChange }
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Validates an action's plan against its kind. A `promote-release` (a release train's step, approved
 * by the person who started the train) sets one image (`set-image`) or patches the workload
 * (`patch-manifest`). A `block-promotion` pauses the service's Rollout
 * in Git (`pause-rollout`); one recorded only (the service declares no path) makes no commit and
 * completes with no branch.
 */
export function gitPlanFor(kind: ProposalKind, plan: unknown): GitPlan {
  if (kind === "block-promotion" && !PausePlan.safeParse(plan).success) {
    const action = (plan as { action?: unknown } | null)?.action;
    if (action !== "pause-rollout") return { kind: "none" };
  }
  const schema =
    kind === "rollback-rollout"
      ? RevertPlan
      : kind === "promote-canary"
        ? CanaryPlan
        : kind === "promote-release"
          ? ReleasePlan
          : PausePlan;
  const parsed = schema.safeParse(plan);
  if (!parsed.success) {
    return {
      kind: "invalid",
      reason: `invalid ${kind} plan: ${parsed.error.issues
        .map((issue) => `${issue.path.join(".") || "(plan)"}: ${issue.message}`)
        .join("; ")}`,
    };
  }
  const change = parsed.data;
  // exactOptionalPropertyTypes: an absent container is left out, not undefined.
  if (change.action === "set-image" && change.container === undefined) {
    return {
      kind: "change",
      change: { action: "set-image", path: change.path, image: change.image },
    };
  }
  return { kind: "change", change: change as GitChange };
}
