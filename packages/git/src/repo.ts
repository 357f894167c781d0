import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { editCanaryWeight, editRolloutPaused } from "./canary.js";
import type { CanaryEdit } from "./canary.js";
import { InvalidChangeError } from "./errors.js";
import { editImage } from "./image.js";
import type { ImageEdit } from "./image.js";
import { editManifestPatch } from "./patch.js";
import { runGit } from "./run.js";
import type { GitInvocation, GitResult } from "./run.js";

/** A change SafeDeploy makes to the environment repo. */
export type GitChange =
  | { readonly action: "git-revert"; readonly path: string }
  | {
      readonly action: "set-canary-weight";
      readonly path: string;
      readonly from: number;
      readonly to: number;
    }
  | { readonly action: "pause-rollout"; readonly path: string }
  | {
      /** Set the image of the one workload container under `path` (a release train's step). */
      readonly action: "set-image";
      readonly path: string;
      readonly image: string;
      /** The container to change; without it, the path must hold exactly one container. */
      readonly container?: string;
    }
  | {
      /** A JSON merge patch of the one workload under `path` (a release train's patch step). */
      readonly action: "patch-manifest";
      readonly path: string;
      readonly patch: Readonly<Record<string, unknown>>;
    };

/** Who commits. Fixed, so that two replicas making the same change produce the same sha. */
export interface CommitIdentity {
  readonly name: string;
  readonly email: string;
}

/** The default identity: `SafeDeploy <safedeploy@localhost>`. */
export const SAFEDEPLOY_IDENTITY: CommitIdentity = {
  name: "SafeDeploy",
  email: "safedeploy@localhost",
};

/** One approved action, as the actuator hands it to the repo. */
export interface ChangeRequest {
  readonly proposalId: string;
  readonly incidentId: string | null;
  /** Proposal kind, e.g. `rollback-rollout` (goes into the commit body and PR labels). */
  readonly kind: string;
  /** ISO time the action was requested: the author and committer date of the commit. */
  readonly requestedAt: string;
  readonly change: GitChange;
  /** Compute the commit and its diff, push nothing. */
  readonly dryRun: boolean;
}

/** Ambiguity a human must resolve; nothing was pushed. */
export interface NeedsTriage {
  readonly status: "needs-triage";
  readonly branch: string;
  readonly reason: string;
  /** The repo already is as the change asks: nothing to commit (not a conflict). */
  readonly unchanged?: true;
}

/** A commit on `safedeploy/<proposal>`: pushed now, found on the remote, or only computed. */
export interface ChangeCommitted {
  readonly status: "pushed" | "already-pushed" | "dry-run";
  readonly branch: string;
  readonly commit: string;
  /** The base branch head the commit was made on. */
  readonly baseCommit: string;
  /** The commit's unified diff (`git diff <parent> <commit>`). */
  readonly diff: string;
  /** `git diff --stat` of the same. */
  readonly diffStat: string;
  /** Commit subject and body, without trailers (also the pull request's title and summary). */
  readonly subject: string;
  readonly body: string;
}

export type ChangeOutcome = ChangeCommitted | NeedsTriage;

/** A change staged in the work tree, ready to commit, or why it cannot be made. */
export type StagedChange =
  | { readonly status: "staged"; readonly subject: string; readonly body: string }
  | { readonly status: "needs-triage"; readonly reason: string; readonly unchanged?: true };

/** A change that cannot be staged; `unchanged` when the repo already is as it asks. */
function triage(reason: string, unchanged?: true): StagedChange {
  return { status: "needs-triage", reason, ...(unchanged === undefined ? {} : { unchanged }) };
}

/** Options of {@link openEnvRepo}. */
export interface EnvRepoOptions {
  /** The environment repo: a URL or a local path (`SAFEDEPLOY_ENV_REPO`). */
  readonly remote: string;
  /** Base branch (`SAFEDEPLOY_ENV_BRANCH`), default `main`. */
  readonly baseBranch?: string;
  /** A directory this repo owns alone (created if missing); one per process. */
  readonly workDir: string;
  readonly identity?: CommitIdentity;
  /**
   * A token for HTTPS remotes (e.g. a GitHub installation token), asked for before each network
   * command and passed to git through the environment, never through argv or the remote URL.
   */
  readonly httpToken?: () => Promise<string | undefined>;
}

/** A local clone of the environment repo; every method runs alone (calls are queued). */
export interface EnvRepo {
  readonly workDir: string;
  readonly baseBranch: string;
  /**
   * Fetches, then makes the requested change on `safedeploy/<proposalId>` idempotently: a branch
   * already on the remote is verified (its head must carry `SafeDeploy-Proposal: <id>`) and
   * reported, never pushed again; pushes never force.
   */
  apply(request: ChangeRequest): Promise<ChangeOutcome>;
  /** Fetches, resets to the base head and stages the reverse of the last commit that changed `path`, only under `path`. */
  planRevert(path: string): Promise<StagedChange>;
  /** Fetches, resets to the base head and stages the canary weight edit. */
  setCanaryWeight(path: string, from: number, to: number): Promise<StagedChange>;
  /** The head sha of `refs/heads/<branch>` on the remote, or null. */
  remoteHead(branch: string): Promise<string | null>;
}

/** The branch SafeDeploy uses for a proposal. */
export function branchFor(proposalId: string): string {
  return `safedeploy/${proposalId}`;
}

/** A repository-relative path without `..`, `.` segments, a leading `/` or `-`; trailing `/` dropped. */
export function normalizeRepoPath(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const segments = trimmed.split("/");
  if (
    trimmed === "" ||
    trimmed.startsWith("/") ||
    trimmed.startsWith("-") ||
    segments.some((s) => s === "" || s === "." || s === "..") ||
    /[\0\n\r]/.test(trimmed)
  ) {
    throw new InvalidChangeError(`refusing the repository path ${JSON.stringify(path)}`);
  }
  return trimmed;
}

/** The full commit message: subject, body and SafeDeploy trailers. */
export function commitMessage(
  subject: string,
  body: string,
  trailers: { proposalId: string; incidentId: string | null },
): string {
  const lines = [`SafeDeploy-Proposal: ${trailers.proposalId}`];
  if (trailers.incidentId !== null) lines.push(`SafeDeploy-Incident: ${trailers.incidentId}`);
  return `${subject}\n\n${body}\n\n${lines.join("\n")}\n`;
}

function abbreviate(sha: string): string {
  return sha.slice(0, 12);
}

/**
 * Opens (creating if needed) a clone of the environment repo in `workDir`. The clone is bare of
 * history beyond what fetch brings; nothing is fetched until an action runs.
 */
export async function openEnvRepo(options: EnvRepoOptions): Promise<EnvRepo> {
  const base = options.baseBranch ?? "main";
  const dir = options.workDir;
  const identity = options.identity ?? SAFEDEPLOY_IDENTITY;
  const originBase = `refs/remotes/origin/${base}`;
  await mkdir(dir, { recursive: true });

  const git = (args: readonly string[], extra: Partial<GitInvocation> = {}): Promise<GitResult> =>
    runGit({ cwd: dir, args, ...extra });
  const out = async (args: readonly string[]): Promise<string> => (await git(args)).stdout.trim();

  const authEnv = async (): Promise<Record<string, string>> => {
    const token = await options.httpToken?.();
    if (typeof token !== "string") return {};
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    return {
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "http.extraHeader",
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    };
  };
  const network = async (args: readonly string[], extra: Partial<GitInvocation> = {}) =>
    git(args, { ...extra, env: { ...(await authEnv()), ...extra.env } });

  const initialised = await stat(join(dir, ".git")).then(
    () => true,
    () => false,
  );
  if (!initialised) {
    await git(["init", "--quiet"]);
    await git(["remote", "add", "origin", options.remote]);
  } else {
    await git(["remote", "set-url", "origin", options.remote]);
  }
  await git(["check-ref-format", "--branch", base]);

  const fetchBase = async () => {
    await network([
      "fetch",
      "--quiet",
      "--prune",
      "--no-tags",
      "origin",
      `+refs/heads/${base}:${originBase}`,
    ]);
  };
  const resetToBase = async () => {
    await git(["checkout", "--quiet", "--force", "--detach", originBase]);
    await git(["clean", "--quiet", "-ffdx"]);
  };

  const remoteHead = async (branch: string): Promise<string | null> => {
    const result = await network(["ls-remote", "--exit-code", "origin", `refs/heads/${branch}`], {
      okExitCodes: [2],
    });
    const sha = result.stdout.trim().split(/\s+/)[0];
    return result.exitCode === 2 || sha === undefined || sha === "" ? null : sha;
  };

  const stageRevert = async (rawPath: string): Promise<StagedChange> => {
    const path = normalizeRepoPath(rawPath);
    const last = await out(["log", "-1", "--format=%H", originBase, "--", path]);
    if (last === "") return triage(`no commit on ${base} changed ${path}`);
    const present = await out(["ls-tree", "--name-only", originBase, "--", path]);
    if (present === "") {
      return triage(`${path} does not exist on ${base} (last changed by ${abbreviate(last)})`);
    }
    const parents = (await out(["rev-list", "--parents", "-n", "1", last])).split(" ").slice(1);
    if (parents.length === 0) {
      return triage(
        `the last commit that changed ${path} (${abbreviate(last)}) is the root commit`,
      );
    }
    if (parents.length > 1) {
      return triage(
        `the last commit that changed ${path} (${abbreviate(last)}) is a merge; which side to revert is ambiguous`,
      );
    }
    const patch = (
      await git([
        "diff",
        "--binary",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        `${last}^`,
        last,
        "--",
        path,
      ])
    ).stdout;
    if (patch === "") return triage(`${abbreviate(last)} has no textual change under ${path}`);
    await resetToBase();
    try {
      await git(["apply", "--reverse", "--index", "--whitespace=nowarn"], { input: patch });
    } catch (error) {
      await resetToBase();
      const detail = error instanceof Error ? error.message.split("\n").slice(0, 4).join(" ") : "";
      return triage(
        `the reverse of ${abbreviate(last)} under ${path} does not apply on ${base}: later commits changed the same lines (${detail})`,
      );
    }
    const original = await out(["log", "-1", "--format=%s", last]);
    return {
      status: "staged",
      subject: `Revert ${path} to before ${abbreviate(last)}`,
      body: `Reverts the part of ${last} ("${original}") under ${path}.\nChanges that commit made outside ${path} are left as they are.`,
    };
  };

  /**
   * Edits the one manifest under `path` that `edit` changes (of all YAML files there); none, a
   * problem in any, or several edited need triage. `target` names what is edited in those
   * messages; `label` names one edit in the list of several.
   */
  const stageManifestEdit = async <E extends { readonly kind: "edited"; readonly text: string }>(
    rawPath: string,
    edit: (source: string) => E | Exclude<CanaryEdit | ImageEdit, { kind: "edited" }>,
    describeEdit: (edited: E, file: string) => { subject: string; body: string },
    target: { readonly one: string; readonly many: string },
    label: (edited: E, file: string) => string = (_edited, file) => file,
  ): Promise<StagedChange> => {
    const path = normalizeRepoPath(rawPath);
    const files = (await out(["ls-tree", "-r", "--name-only", originBase, "--", path]))
      .split("\n")
      .filter((file) => /\.ya?ml$/.test(file))
      .sort();
    if (files.length === 0) return triage(`no YAML manifest under ${path} on ${base}`);
    await resetToBase();
    const edits: { file: string; edited: E }[] = [];
    for (const file of files) {
      const source = await readFile(join(dir, ...file.split(posix.sep)), "utf8");
      const edited = edit(source);
      if (edited.kind === "problem") return triage(`${file}: ${edited.reason}`, edited.unchanged);
      if (edited.kind === "edited") edits.push({ file, edited: edited });
    }
    const [only, ...others] = edits;
    if (only === undefined) return triage(`no ${target.one} under ${path}`);
    if (others.length > 0) {
      const several = edits.map((e) => label(e.edited, e.file)).join(", ");
      return triage(`several ${target.many} under ${path}: ${several}`);
    }
    await writeFile(join(dir, ...only.file.split(posix.sep)), only.edited.text, "utf8");
    await git(["add", "--", only.file]);
    return { status: "staged", ...describeEdit(only.edited, only.file) };
  };

  const ROLLOUT = { one: "Argo Rollouts Rollout", many: "Rollouts" };

  const stageCanary = (path: string, from: number, to: number): Promise<StagedChange> =>
    stageManifestEdit(
      path,
      (source) => editCanaryWeight(source, from, to),
      ({ rollout }, file) => ({
        subject: `Set the canary weight of ${rollout} to ${to}`,
        body: `Changes the first setWeight step of Rollout ${rollout} in ${file} from ${from} to ${to}.`,
      }),
      ROLLOUT,
    );

  const stagePause = (path: string): Promise<StagedChange> =>
    stageManifestEdit(
      path,
      editRolloutPaused,
      ({ rollout }, file) => ({
        subject: `Pause Rollout ${rollout}: promotion is blocked`,
        body: `Sets spec.paused: true on Rollout ${rollout} in ${file}, so Argo Rollouts promotes nothing further until it is unpaused.`,
      }),
      ROLLOUT,
    );

  const stagePatch = (
    path: string,
    patch: Readonly<Record<string, unknown>>,
  ): Promise<StagedChange> =>
    stageManifestEdit(
      path,
      (source) => editManifestPatch(source, patch),
      ({ rollout: workload }, file) => ({
        subject: `Patch ${workload}: ${Object.keys(patch).join(", ")}`,
        body: `Applies a merge patch of ${Object.keys(patch).join(", ")} to ${workload} in ${file}.`,
      }),
      { one: "workload (Rollout, Deployment, StatefulSet, DaemonSet)", many: "workloads" },
    );

  const stageImage = (
    path: string,
    image: string,
    container: string | undefined,
  ): Promise<StagedChange> => {
    const which = container === undefined ? "a container" : `a container named ${container}`;
    return stageManifestEdit(
      path,
      (source) => editImage(source, container, image),
      (edited, file) => ({
        subject: `Set the image of ${edited.workload} to ${image}`,
        body: `Changes the image of container ${edited.container || "(unnamed)"} of ${edited.workload} in ${file} from ${edited.from} to ${image}.`,
      }),
      { one: `workload with ${which}`, many: `workloads with ${which}` },
      (edited, file) => `${file} (${edited.workload})`,
    );
  };

  const describe = async (
    commit: string,
  ): Promise<Pick<ChangeCommitted, "diff" | "diffStat" | "baseCommit">> => {
    const parent = await out(["rev-parse", `${commit}^`]);
    const diffArgs = ["diff", "--no-color", "--no-ext-diff", parent, commit];
    return {
      baseCommit: parent,
      diff: (await git(diffArgs)).stdout,
      diffStat: await out([...diffArgs, "--stat"]),
    };
  };

  const existing = async (
    request: ChangeRequest,
    branch: string,
    sha: string,
  ): Promise<ChangeOutcome> => {
    const tracking = `refs/remotes/origin/${branch}`;
    await network(["fetch", "--quiet", "--no-tags", "origin", `+refs/heads/${branch}:${tracking}`]);
    const head = await out(["rev-parse", tracking]);
    const claimed = await out([
      "log",
      "-1",
      "--format=%(trailers:key=SafeDeploy-Proposal,valueonly)",
      head,
    ]);
    if (
      !claimed
        .split("\n")
        .map((v) => v.trim())
        .includes(request.proposalId)
    ) {
      return {
        status: "needs-triage",
        branch,
        reason: `${branch} exists on the remote (${abbreviate(sha)}) but its head does not carry SafeDeploy-Proposal: ${request.proposalId}`,
      };
    }
    const subject = await out(["log", "-1", "--format=%s", head]);
    const message = await out(["log", "-1", "--format=%b", head]);
    const body = message.split("\n\nSafeDeploy-Proposal:")[0] ?? message;
    return {
      status: "already-pushed",
      branch,
      commit: head,
      subject,
      body,
      ...(await describe(head)),
    };
  };

  const stage = (change: GitChange): Promise<StagedChange> => {
    switch (change.action) {
      case "git-revert":
        return stageRevert(change.path);
      case "set-canary-weight":
        return stageCanary(change.path, change.from, change.to);
      case "pause-rollout":
        return stagePause(change.path);
      case "set-image":
        return stageImage(change.path, change.image, change.container);
      case "patch-manifest":
        return stagePatch(change.path, change.patch);
    }
  };

  const applyChange = async (request: ChangeRequest): Promise<ChangeOutcome> => {
    const branch = branchFor(request.proposalId);
    await git(["check-ref-format", "--branch", branch]).catch((error: unknown) => {
      throw new InvalidChangeError(`${JSON.stringify(branch)} is not a valid branch name`, {
        cause: error,
      });
    });
    await fetchBase();
    if (!request.dryRun) {
      const found = await remoteHead(branch);
      if (found !== null) return existing(request, branch, found);
    }
    const staged = await stage(request.change);
    if (staged.status === "needs-triage") return { ...staged, branch };
    const at = request.requestedAt;
    const commitEnv = {
      GIT_AUTHOR_NAME: identity.name,
      GIT_AUTHOR_EMAIL: identity.email,
      GIT_AUTHOR_DATE: at,
      GIT_COMMITTER_NAME: identity.name,
      GIT_COMMITTER_EMAIL: identity.email,
      GIT_COMMITTER_DATE: at,
    };
    await git(
      [
        "-c",
        "commit.gpgsign=false",
        "commit",
        "--quiet",
        "--no-verify",
        "--cleanup=verbatim",
        "--file=-",
      ],
      { env: commitEnv, input: commitMessage(staged.subject, staged.body, request) },
    );
    const commit = await out(["rev-parse", "HEAD"]);
    const details = await describe(commit);
    const committed = { branch, commit, subject: staged.subject, body: staged.body, ...details };
    if (request.dryRun) return { status: "dry-run", ...committed };
    try {
      // No force: if another replica created the branch meanwhile, this is refused (or a no-op
      // when it pushed the very same commit) and the branch found on the remote is reported.
      await network(["push", "--quiet", "--no-verify", "origin", `${commit}:refs/heads/${branch}`]);
    } catch (error) {
      const found = await remoteHead(branch);
      if (found === null) throw error;
      return existing(request, branch, found);
    }
    return { status: "pushed", ...committed };
  };

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    workDir: dir,
    baseBranch: base,
    apply: (request) => serial(() => applyChange(request)),
    planRevert: (path) =>
      serial(async () => {
        await fetchBase();
        return stageRevert(path);
      }),
    setCanaryWeight: (path, from, to) =>
      serial(async () => {
        await fetchBase();
        return stageCanary(path, from, to);
      }),
    remoteHead: (branch) => serial(() => remoteHead(branch)),
  };
}
