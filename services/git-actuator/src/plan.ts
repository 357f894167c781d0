import type { GitChange } from "@safedeploy/git";
import { PLAN_ACTIONS, ProposalPlan } from "@safedeploy/schema";
import type { ProposalKind } from "@safedeploy/schema";

/** What to do in Git for an approved action; `none` for plans that need no commit. */
export type GitPlan =
  | { readonly kind: "change"; readonly change: GitChange }
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * The Git change of an action's plan, checked again here whatever the message claims: the plan
 * must be one of the schema's (`ProposalPlan`, paths inside the repository) and one its kind may
 * carry (a rollback only reverts, a canary promotion only sets a weight…). A `record-only` block
 * makes no commit.
 */
export function gitPlanFor(kind: ProposalKind, plan: unknown): GitPlan {
  const parsed = ProposalPlan.safeParse(plan);
  if (!parsed.success) {
    return {
      kind: "invalid",
      reason: `invalid ${kind} plan: ${parsed.error.issues
        .map((issue) => `${issue.path.join(".") || "(plan)"}: ${issue.message}`)
        .join("; ")}`,
    };
  }
  const valid = parsed.data;
  if (!PLAN_ACTIONS[kind].includes(valid.action)) {
    return {
      kind: "invalid",
      reason: `invalid ${kind} plan: action: ${valid.action} is not a plan of ${kind} (${PLAN_ACTIONS[kind].join(" or ")})`,
    };
  }
  switch (valid.action) {
    case "record-only":
      return { kind: "none" };
    case "git-revert":
      return {
        kind: "change",
        change: {
          action: "git-revert",
          path: valid.path,
          ...(valid.burnBegan === undefined ? {} : { burnBegan: valid.burnBegan }),
          ...(valid.liveRevision === undefined ? {} : { liveRevision: valid.liveRevision }),
        },
      };
    case "pause-rollout":
      return { kind: "change", change: { action: "pause-rollout", path: valid.path } };
    case "set-canary-weight":
      return { kind: "change", change: valid };
    case "set-image":
      return {
        kind: "change",
        change: {
          action: "set-image",
          path: valid.path,
          image: valid.image,
          ...(valid.container === undefined ? {} : { container: valid.container }),
        },
      };
    case "patch-manifest":
      return {
        kind: "change",
        change: { action: "patch-manifest", path: valid.path, patch: valid.patch },
      };
  }
}
