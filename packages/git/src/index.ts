/**
 * @packageDocumentation
 * The environment-repo adapter: a local clone driven through the `git` CLI (argv only, never a
 * shell), the changes SafeDeploy makes (revert one path's part of the newest commit on the base
 * branch's first-parent history that changed it, refusing one that would re-apply harm; set a
 * canary weight or pause an Argo Rollouts Rollout; set a workload's image for a release train),
 * deterministic commits on `safedeploy/<proposal>`, no-force idempotent pushes, and a
 * provider-neutral forge (plain git, or GitHub pull requests).
 */
export { editCanaryWeight, editRolloutPaused } from "./canary.js";
export { editManifestPatch } from "./patch.js";
export type { CanaryEdit } from "./canary.js";
export { editImage } from "./image.js";
export type { ImageEdit } from "./image.js";
export { ForgeError, GitCommandError, InvalidChangeError, redactSecrets } from "./errors.js";
export { gitForge, reviewFor } from "./forge.js";
export type { Forge, ForgeChange, ForgeReview, ReviewLink } from "./forge.js";
export { classifyForgeError, githubForge } from "./github.js";
export type { GitHubAuth, GitHubForgeOptions } from "./github.js";
export {
  SAFEDEPLOY_IDENTITY,
  branchFor,
  commitMessage,
  normalizeRepoPath,
  openEnvRepo,
} from "./repo.js";
export type {
  ChangeCommitted,
  ChangeOutcome,
  ChangeRequest,
  CommitIdentity,
  EnvRepo,
  EnvRepoOptions,
  GitChange,
  NeedsTriage,
  StagedChange,
  StagedTriage,
} from "./repo.js";
