import { messageId } from "@safedeploy/schema";
import type { EventData } from "@safedeploy/schema";

/** A deploy event as `governance.deploy-recorded` carries it, with the service it belongs to. */
export type DeployEvent = EventData<"governance.deploy-recorded"> & { readonly service: string };

/** The triggers that mean the revision is (at least partly) serving traffic. */
const LIVE_TRIGGERS: ReadonlySet<DeployEvent["trigger"]> = new Set([
  "on-deployed",
  "on-rollout-step-completed",
  "on-rollout-completed",
]);

/**
 * The identity a deploy event is deduplicated on: (app, revision, trigger, step), whoever reports
 * it and however often. It is also the event's id (`Nats-Msg-Id`).
 */
export function deployEventId(
  deploy: Pick<DeployEvent, "app" | "revision" | "trigger" | "step">,
): string {
  return messageId(
    "governance.deploy-recorded",
    deploy.app,
    deploy.revision,
    deploy.trigger,
    deploy.step ?? "-",
  );
}

/**
 * The catalog service an Argo application or rollout reports for: the service of that name (the
 * catalog has no alias field yet); null when there is none, which the caller refuses.
 */
export function serviceOfApp(
  services: readonly { readonly name: string }[],
  app: string,
): string | null {
  return services.find((service) => service.name === app)?.name ?? null;
}

export type CanaryStepOutcome =
  | { readonly kind: "step"; readonly weight: number }
  | { readonly kind: "none"; readonly reason: string };

/**
 * Whether a deploy event puts the service into a canary step, and at what weight: only a rollout
 * step that completed at a weight the catalog declares (`canary.steps`). A step event without a
 * weight (a pause or analysis step) or at an undeclared weight starts no bake.
 */
export function canaryStepOf(
  deploy: Pick<DeployEvent, "trigger" | "details">,
  canary: { readonly steps: readonly number[] } | undefined,
): CanaryStepOutcome {
  if (deploy.trigger !== "on-rollout-step-completed") {
    return { kind: "none", reason: `${deploy.trigger} is not a canary step` };
  }
  if (canary === undefined) return { kind: "none", reason: "no canary strategy in the catalog" };
  const weight = deploy.details.weight;
  if (typeof weight !== "number" || !Number.isInteger(weight)) {
    return { kind: "none", reason: "the step carries no setWeight" };
  }
  if (!canary.steps.includes(weight)) {
    return {
      kind: "none",
      reason: `weight ${weight} is not a declared step (${canary.steps.join(", ")})`,
    };
  }
  return { kind: "step", weight };
}

/**
 * The deploy that was live when the burn began: the latest event at or before `burnBegan` whose
 * trigger means the revision serves traffic; null when none is known. Ties keep the later-listed.
 */
export function deployBeforeBurn<D extends Pick<DeployEvent, "trigger" | "at">>(
  deploys: readonly D[],
  burnBegan: string,
): D | null {
  const burnMs = Date.parse(burnBegan);
  let latest: D | null = null;
  for (const deploy of deploys) {
    const at = Date.parse(deploy.at);
    if (!LIVE_TRIGGERS.has(deploy.trigger) || Number.isNaN(at) || at > burnMs) continue;
    if (latest === null || at >= Date.parse(latest.at)) latest = deploy;
  }
  return latest;
}

const COMMIT_SHA = /^[0-9a-f]{7,40}$/;

/**
 * The environment-repo commit live when the burn began: the revision of the latest live deploy
 * before it that names a commit (Argo CD reports the synced SHA; a Rollouts step names pods, not
 * commits). Undefined when no deploy event says; then the repo's own rule applies.
 */
export function liveRevisionAt(
  deploys: readonly Pick<DeployEvent, "trigger" | "at" | "revision">[],
  burnBegan: string,
): string | undefined {
  const commits = deploys.filter((deploy) => COMMIT_SHA.test(deploy.revision.toLowerCase()));
  return deployBeforeBurn(commits, burnBegan)?.revision.toLowerCase();
}

const VERBS: Record<DeployEvent["trigger"], string> = {
  "on-deployed": "synced",
  "on-sync-failed": "failed to sync",
  "on-rollout-step-completed": "completed a rollout step",
  "on-rollout-completed": "completed its rollout",
  "on-rollout-aborted": "aborted its rollout",
};

/** A 40-hex SHA shortened to 7 characters, as git shows it; other revisions as they are. */
export function shortRevision(revision: string): string {
  return /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 7) : revision;
}

/** "burn began 3 min after checkout revision 4a4fb30 synced", for the incident. */
export function describeDeployBeforeBurn(
  deploy: Pick<DeployEvent, "service" | "revision" | "trigger" | "at" | "step">,
  burnBegan: string,
): string {
  const seconds = Math.max(0, Math.round((Date.parse(burnBegan) - Date.parse(deploy.at)) / 1000));
  const after =
    seconds < 120
      ? `${seconds} s`
      : seconds < 7_200
        ? `${Math.round(seconds / 60)} min`
        : `${Math.round(seconds / 3_600)} h`;
  const step = deploy.step === null ? "" : ` step ${deploy.step}`;
  return `burn began ${after} after ${deploy.service} revision ${shortRevision(deploy.revision)}${step} ${VERBS[deploy.trigger]}`;
}

/** One commit of the base branch's first-parent history, newest first. */
export interface HistoryCommit {
  readonly commit: string;
  readonly committedAt: string;
  /** Whether it changed the service's `rollback.path`. */
  readonly changesPath: boolean;
}

export type RollbackTarget =
  | { readonly kind: "chosen"; readonly commit: string; readonly source: "deploy" | "repo" }
  | { readonly kind: "ambiguous"; readonly reason: string };

const sameRevision = (commit: string, revision: string): boolean =>
  revision.length >= 7 && commit.startsWith(revision.toLowerCase());

/**
 * The commit to revert. The repo alone can only say "the newest commit that changed the path and
 * was committed before the burn began", which is wrong when that commit was not live yet
 * (committed before the burn, synced after it). The deploy live at the burn settles it: the newest
 * path commit at or below its revision on the first-parent history. Without deploy events the
 * repo's rule applies; a live revision not on the history, or no path commit below it, is
 * ambiguous (manual triage), never a guess.
 */
export function rollbackTarget(input: {
  readonly history: readonly HistoryCommit[];
  readonly burnBegan: string;
  readonly deploys: readonly Pick<DeployEvent, "trigger" | "at" | "revision">[];
}): RollbackTarget {
  const burnMs = Date.parse(input.burnBegan);
  const live = deployBeforeBurn(input.deploys, input.burnBegan);
  if (live !== null) {
    const at = input.history.findIndex((c) => sameRevision(c.commit, live.revision));
    if (at === -1) {
      return {
        kind: "ambiguous",
        reason: `the revision live at the burn (${shortRevision(live.revision)}) is not on the base branch's history`,
      };
    }
    const target = input.history.slice(at).find((c) => c.changesPath);
    return target === undefined
      ? {
          kind: "ambiguous",
          reason: `no commit at or below ${shortRevision(live.revision)} changed the path`,
        }
      : { kind: "chosen", commit: target.commit, source: "deploy" };
  }
  const newest = input.history.find((c) => c.changesPath && Date.parse(c.committedAt) <= burnMs);
  if (newest === undefined) {
    return { kind: "ambiguous", reason: "no commit before the burn changed the path" };
  }
  return { kind: "chosen", commit: newest.commit, source: "repo" };
}
