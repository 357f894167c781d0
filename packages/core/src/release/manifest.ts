/** The release manifest: which service a train promoted to what, when, with which commit. */
import type { CheckOutcome } from "./checks.js";
import type { PlannedChange } from "./plan.js";
import { hooksOf, plannedStep } from "./state.js";
import type { FollowUpPhase, HookRecord, TrainState, TrainStatus } from "./types.js";

/** One promoted service in a release manifest. */
export interface ManifestEntry {
  readonly step: number;
  readonly service: string;
  readonly change: PlannedChange;
  readonly commit: string | null;
  /** The recorded deploy time. */
  readonly promotedAt: string;
  readonly checkedAt: string | null;
  readonly outcome: CheckOutcome | null;
  /** The strategy hooks called (or recorded) for this step. */
  readonly hooks: readonly HookRecord[];
}

/** The release manifest (JSON): which service was promoted to what, when, with which commit. */
export interface ReleaseManifest {
  readonly trainId: string;
  readonly train: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly status: TrainStatus;
  readonly reason: string | null;
  readonly promoted: readonly ManifestEntry[];
  readonly followUps: readonly {
    readonly after: string;
    readonly dueAt: string;
    readonly phase: FollowUpPhase;
    readonly attributedStep: number | null;
  }[];
}

/** The release manifest of a train, from its state: the steps that landed, in order. */
export function releaseManifest(state: TrainState): ReleaseManifest {
  return {
    trainId: state.trainId,
    train: state.plan.train,
    dryRun: state.dryRun,
    startedAt: state.startedAt,
    finishedAt: state.finishedAt,
    status: state.status,
    reason: state.reason,
    promoted: state.steps.flatMap((step) =>
      step.promotedAt === null
        ? []
        : [
            {
              step: step.index,
              service: step.service,
              change: plannedStep(state.plan, step.index).change,
              commit: step.commit,
              promotedAt: step.promotedAt,
              checkedAt: step.checkedAt,
              outcome: step.outcome,
              hooks: hooksOf(step),
            },
          ],
    ),
    followUps: state.followUps.map((followUp) => ({
      after: followUp.after,
      dueAt: followUp.dueAt,
      phase: followUp.phase,
      attributedStep: followUp.attribution?.kind === "step" ? followUp.attribution.step : null,
    })),
  };
}
