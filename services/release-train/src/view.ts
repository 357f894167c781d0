import { releaseManifest } from "@safedeploy/core";
import type { TrainView } from "@safedeploy/schema";
import { promotionId } from "./effects.js";
import type { TrainRecord } from "./store.js";

/** A train as the API shows it. */
export function toTrainView(record: TrainRecord): TrainView {
  const { state } = record;
  return {
    id: record.id,
    name: record.document.metadata.name,
    state: state.status,
    dryRun: state.dryRun,
    actor: record.actor,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    reason: state.reason,
    steps: state.steps.map((step) => {
      const planned = state.plan.steps[step.index];
      const promotion = record.promotions[String(step.index)];
      return {
        index: step.index,
        service: step.service,
        change: planned?.summary ?? "",
        phase: step.phase,
        proposalId: promotionId(record.id, step.index),
        branch: promotion?.kind === "completed" ? promotion.branch : null,
        commit: step.commit,
        deployedAt: step.promotedAt,
        guardUntil: step.guardUntil,
        outcome: step.outcome,
        diff: promotion?.kind === "completed" ? promotion.diff : null,
        gate:
          step.gate === undefined || step.gate === null
            ? null
            : { verdict: step.gate.verdict, reasons: [...step.gate.reasons] },
        approval:
          step.approval === undefined || step.approval === null
            ? null
            : {
                proposalId: step.approval.proposalId,
                state: step.approval.state,
                required: step.approval.required,
                approvals: step.approval.approvals.map((a) => a.by),
              },
        evidence: [
          ...(step.approval?.dryRun === true
            ? [
                {
                  type: "approval",
                  dryRun: true,
                  required: step.approval.required,
                  detail: `would need ${step.approval.required} distinct approval${step.approval.required === 1 ? "" : "s"}; a dry run creates no proposal`,
                },
              ]
            : []),
          ...(step.approval?.rejection === undefined || step.approval.rejection === null
            ? []
            : [{ type: "rejection", ...step.approval.rejection }]),
          // The gate of the step's service blocks until this is cleared.
          ...(record.guards[step.service] === undefined
            ? []
            : [{ type: "guard-failed", guardId: record.guards[step.service] }]),
          ...(step.inPlace === undefined || step.inPlace === null
            ? []
            : [{ type: "in-place", detail: step.inPlace }]),
          ...(step.deployProbe === undefined || step.deployProbe === null
            ? []
            : [{ type: "deployed-when", at: step.promotedAt, ...step.deployProbe }]),
          ...(step.hooks ?? []).map((hook) => ({ type: "hook", ...hook })),
          ...(record.evidence[String(step.index)] ?? []),
        ],
      };
    }),
    followUps: state.followUps.map((followUp) => ({
      after: followUp.after,
      dueAt: followUp.dueAt,
      phase: followUp.phase === "running" ? "scheduled" : followUp.phase,
      attributedStep: followUp.attribution?.kind === "step" ? followUp.attribution.step : null,
      at: followUp.at,
    })),
    revert: record.revert,
    triage:
      state.attribution?.kind === "ambiguous"
        ? { steps: [...state.attribution.steps], evidence: [...state.attribution.evidence] }
        : null,
    manifest: { ...releaseManifest(state) },
  };
}
