import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import type { RevertTarget, RollbackHarm } from "@safedeploy/schema";
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
  | {
      readonly action: "git-revert";
      readonly path: string;
      /**
       * ISO time the burn began: a commit committed after it cannot be the cause, so it is not
       * reverted (`newer-than-burn`). Without it, that rule is not applied.
       */
      readonly burnBegan?: string;
      /**
       * The commit live when the burn began (from deploy events): the revert undoes the newest
       * change under the path at or below it, which was live, so `newer-than-burn` does not apply.
       */
      readonly liveRevision?: string;
    }
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
  /** Proposal kind, e.g. `rollback-rollout` (the `SafeDeploy-Action` trailer and a PR label). */
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
  /** A revert refused because it would re-apply harm (DESIGN.md invariant 11). */
  readonly harm?: RollbackHarm;
  /** For a revert: the commit it would have reverted, when one was found. */
  readonly target?: RevertTarget;
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
  /** For a revert: the commit reverted and why that one. */
  readonly target?: RevertTarget;
}

export type ChangeOutcome = ChangeCommitted | NeedsTriage;

/** A change that cannot be made, with what a person needs to decide (see {@link NeedsTriage}). */
export type StagedTriage = Omit<NeedsTriage, "branch">;

/** A change staged in the work tree, ready to commit, or why it cannot be made. */
export type StagedChange =
  | {
      readonly status: "staged";
      readonly subject: string;
      readonly body: string;
      readonly target?: RevertTarget;
    }
  | StagedTriage;

/** A change that cannot be staged; `unchanged` when the repo already is as it asks. */
function triage(reason: string, unchanged?: true): StagedTriage {
  return { status: "needs-triage", reason, ...(unchanged === undefined ? {} : { unchanged }) };
}

/** A revert that cannot be staged, naming the commit it would revert (and the harm, if any). */
function refuseRevert(reason: string, target: RevertTarget, harm?: RollbackHarm): StagedTriage {
  return { status: "needs-triage", reason, target, ...(harm === undefined ? {} : { harm }) };
}

/** The commit a revert undoes (relative to its first parent), or why no commit may be reverted. */
type RevertChoice =
  | { readonly status: "chosen"; readonly target: RevertTarget; readonly firstParent: string }
  | StagedTriage;

/** The kind whose commits are SafeDeploy's rollbacks (`SafeDeploy-Action: rollback-rollout`). */
const ROLLBACK_ACTION = "rollback-rollout";

/**
 * Whether a commit message is one of SafeDeploy's own rollbacks: it says
 * `SafeDeploy-Action: rollback-rollout`, or (made before that trailer existed) it carries
 * `SafeDeploy-Proposal:` and its subject starts with `Revert `. Every line is read, not only the
 * last paragraph git calls trailers: a GitHub squash merge keeps them somewhere in its body.
 */
function isSafeDeployRollback(message: string): boolean {
  const lines = message.split("\n").map((line) => line.trim());
  const action = /^SafeDeploy-Action:\s*(\S+)$/i;
  if (lines.some((line) => action.exec(line)?.[1] === ROLLBACK_ACTION)) return true;
  return (
    (lines[0] ?? "").startsWith("Revert ") &&
    lines.some((line) => /^SafeDeploy-Proposal:\s*\S/i.test(line))
  );
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
  /**
   * Fetches, resets to the base head and stages the reverse, only under `path`, of the newest
   * commit on the base branch's first-parent history that changed `path` (or refuses it).
   */
  planRevert(path: string, burnBegan?: string): Promise<StagedChange>;
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

/**
 * The full commit message: subject, body and SafeDeploy trailers (`SafeDeploy-Proposal`,
 * `SafeDeploy-Incident` when there is one, `SafeDeploy-Action: <kind>`). The action is how a
 * later rollback recognises SafeDeploy's own rollback and refuses to revert it.
 */
export function commitMessage(
  subject: string,
  body: string,
  trailers: { proposalId: string; incidentId: string | null; kind: string },
): string {
  const lines = [`SafeDeploy-Proposal: ${trailers.proposalId}`];
  if (trailers.incidentId !== null) lines.push(`SafeDeploy-Incident: ${trailers.incidentId}`);
  lines.push(`SafeDeploy-Action: ${trailers.kind}`);
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

  const exists = async (commit: string, path: string): Promise<boolean> =>
    (await out(["ls-tree", "--name-only", commit, "--", path])) !== "";

  /** The commit `last` as the approver sees it, and its parents (first parent first). */
  const readTarget = async (
    last: string,
    path: string,
  ): Promise<{ target: RevertTarget; parents: readonly string[] }> => {
    const format = "%H%x00%P%x00%an <%ae>%x00%cI%x00%s";
    const fields = (await out(["log", "-1", `--format=${format}`, last])).split("\0");
    const [commit = last, parentList = "", author = "", committedAt = "", subject = ""] = fields;
    const parents = parentList.split(" ").filter((parent) => parent !== "");
    const history = `newest commit on the first-parent history of ${base} that changed ${path}`;
    const [first, ...merged] = parents;
    const why =
      first === undefined || merged.length === 0
        ? history
        : `${history}: the merge of ${merged.map(abbreviate).join(", ")} into ${base}, reverted relative to its first parent ${abbreviate(first)}`;
    return { target: { commit, author, committedAt, subject, why }, parents };
  };

  /**
   * The SafeDeploy rollback `last` is or, for a merge, brings in (`M^1..M`) under `path`; null
   * when there is none. Reverting it would re-deploy what SafeDeploy rolled back.
   */
  const ownRollbackIn = async (
    last: string,
    parents: readonly string[],
    path: string,
  ): Promise<string | null> => {
    if (isSafeDeployRollback(await out(["log", "-1", "--format=%B", last]))) return last;
    const [first, ...merged] = parents;
    if (first === undefined || merged.length === 0) return null;
    const brought = await out([
      "log",
      "-z",
      "--full-history",
      "--format=%H%n%B",
      `${first}..${last}`,
      "--",
      path,
    ]);
    for (const entry of brought.split("\0")) {
      const [sha = "", ...message] = entry.split("\n");
      if (isSafeDeployRollback(message.join("\n"))) return sha;
    }
    return null;
  };

  /**
   * Chooses the commit to revert on `from`: the newest on its first-parent history that changed
   * `path` (a merge there is a pull request merged into the base: its first parent is what the
   * base was before). Refused, with the harm (DESIGN.md invariant 11), when that commit is
   * SafeDeploy's own rollback, deleted or created the whole path, or was committed after the burn
   * began (`burnMs`); without a burn start that last rule is not applied.
   */
  const chooseRevert = async (
    from: string,
    path: string,
    burnMs: number | undefined,
    liveRevision?: string,
  ): Promise<RevertChoice> => {
    let start = from;
    if (liveRevision !== undefined) {
      // Only a commit of the base's own history: never one from another branch, never a guess.
      const live = await git(["rev-parse", "--verify", "--quiet", `${liveRevision}^{commit}`], {
        okExitCodes: [1],
      });
      const commit = live.stdout.trim();
      const onBase =
        live.exitCode === 0 &&
        (await git(["merge-base", "--is-ancestor", commit, from], { okExitCodes: [1] }))
          .exitCode === 0;
      if (!onBase) {
        return triage(
          `the revision live when the burn began (${abbreviate(liveRevision)}, from deploy events) is not on ${base}`,
        );
      }
      start = commit;
    }
    const last = await out(["log", "--first-parent", "-1", "--format=%H", start, "--", path]);
    if (last === "") return triage(`no commit on ${base} changed ${path}`);
    const short = abbreviate(last);
    const { target, parents } = await readTarget(last, path);
    const rollback = await ownRollbackIn(last, parents, path);
    if (rollback !== null) {
      const which = rollback === last ? "is" : `is the merge ${short}, which brings in`;
      return refuseRevert(
        `the last change to ${path} on ${base} ${which} SafeDeploy's own rollback ${abbreviate(rollback)}: reverting it would re-deploy what was rolled back`,
        target,
        "own-rollback",
      );
    }
    if (!(await exists(from, path))) {
      return refuseRevert(
        `${path} does not exist on ${base} (last changed by ${short}, which deleted it): reverting that would bring a retired service back`,
        target,
        "path-deleted",
      );
    }
    const [firstParent] = parents;
    if (firstParent === undefined) {
      return refuseRevert(
        `the last commit that changed ${path} (${short}) is the root commit`,
        target,
      );
    }
    if (!(await exists(firstParent, path))) {
      return refuseRevert(
        `the last commit that changed ${path} (${short}) created it: reverting it would delete the service`,
        target,
        "path-created",
      );
    }
    // A commit at or below the live revision was serving when the burn began: it may be the cause.
    if (start === from && burnMs !== undefined && Date.parse(target.committedAt) > burnMs) {
      return refuseRevert(
        `the last commit that changed ${path} (${short}) was committed at ${target.committedAt}, after the burn began at ${new Date(burnMs).toISOString()}: it cannot be the cause`,
        target,
        "newer-than-burn",
      );
    }
    return { status: "chosen", target, firstParent };
  };

  /** The burn start in epoch ms; an unreadable one is refused rather than ignored (fail closed). */
  const burnStart = (burnBegan: string | undefined): number | undefined => {
    if (burnBegan === undefined) return undefined;
    const ms = Date.parse(burnBegan);
    if (Number.isNaN(ms)) {
      throw new InvalidChangeError(`burnBegan ${JSON.stringify(burnBegan)} is not an ISO time`);
    }
    return ms;
  };

  const stageRevert = async (
    rawPath: string,
    burnBegan?: string,
    liveRevision?: string,
  ): Promise<StagedChange> => {
    const path = normalizeRepoPath(rawPath);
    const choice = await chooseRevert(originBase, path, burnStart(burnBegan), liveRevision);
    if (choice.status === "needs-triage") return choice;
    const { target, firstParent } = choice;
    const last = target.commit;
    const patch = (
      await git([
        "diff",
        "--binary",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        firstParent,
        last,
        "--",
        path,
      ])
    ).stdout;
    if (patch === "") {
      return refuseRevert(`${abbreviate(last)} has no textual change under ${path}`, target);
    }
    await resetToBase();
    try {
      await git(["apply", "--reverse", "--index", "--whitespace=nowarn"], { input: patch });
    } catch (error) {
      await resetToBase();
      const detail = error instanceof Error ? error.message.split("\n").slice(0, 4).join(" ") : "";
      return refuseRevert(
        `the reverse of ${abbreviate(last)} under ${path} does not apply on ${base}: later commits changed the same lines (${detail})`,
        target,
      );
    }
    return {
      status: "staged",
      subject: `Revert ${path} to before ${abbreviate(last)}`,
      body: [
        `Reverts the part of ${last} ("${target.subject}", by ${target.author}, ${target.committedAt}) under ${path}.`,
        `Changes that commit made outside ${path} are left as they are.`,
        `Chosen as the ${target.why}.`,
      ].join("\n"),
      target,
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

  /**
   * For a revert branch already pushed: the choice made again on the base it was made on (its
   * head's parent), so a redelivery names the same target, and a branch that would re-apply harm
   * (one an earlier version pushed) needs triage instead of being proposed. Null for other changes.
   */
  const revertOnBranch = async (change: GitChange, head: string): Promise<RevertChoice | null> => {
    if (change.action !== "git-revert") return null;
    const choice = await chooseRevert(
      `${head}^`,
      normalizeRepoPath(change.path),
      burnStart(change.burnBegan),
      change.liveRevision,
    );
    return choice.status === "needs-triage" && choice.harm === undefined ? null : choice;
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
    const revert = await revertOnBranch(request.change, head);
    if (revert?.status === "needs-triage") {
      return { ...revert, branch, reason: `${branch} exists on the remote, but ${revert.reason}` };
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
      ...(revert === null ? {} : { target: revert.target }),
    };
  };

  const stage = (change: GitChange): Promise<StagedChange> => {
    switch (change.action) {
      case "git-revert":
        return stageRevert(change.path, change.burnBegan, change.liveRevision);
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
    const committed = {
      branch,
      commit,
      subject: staged.subject,
      body: staged.body,
      ...details,
      ...(staged.target === undefined ? {} : { target: staged.target }),
    };
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
    planRevert: (path, burnBegan) =>
      serial(async () => {
        await fetchBase();
        return stageRevert(path, burnBegan);
      }),
    setCanaryWeight: (path, from, to) =>
      serial(async () => {
        await fetchBase();
        return stageCanary(path, from, to);
      }),
    remoteHead: (branch) => serial(() => remoteHead(branch)),
  };
}
