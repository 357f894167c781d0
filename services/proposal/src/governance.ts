import {
  blockPromotionProposal,
  promoteCanaryProposal,
  recordActionOutcome,
  recordPreviewRefusal,
  actionableReasons,
} from "@safedeploy/core";
import type { Envelope } from "@safedeploy/schema";
import { decide, propose, proposalIdFor, supersede } from "./proposals.js";
import type { ProposalDeps } from "./proposals.js";

export const blockKey = (service: string) => `block.${service}`;

/**
 * A blocked verdict gets one block-promotion proposal (per verdict: service, kind, cause) and
 * supersedes the pending one of the verdict before it; an allowed verdict supersedes it too.
 * Verdicts older than the last one folded in are ignored, so replicas converge.
 */
export const onVerdict =
  (deps: ProposalDeps) =>
  async (verdict: Envelope<"governance.verdict">): Promise<void> => {
    const service = deps.serviceFor(verdict.service);
    if (service === undefined) return;
    const at = verdict.data.evaluatedAt;
    const reasons = actionableReasons(verdict.data.reasons);
    const draft =
      verdict.data.allowed || reasons.length === 0
        ? null
        : blockPromotionProposal(
            {
              service: verdict.service,
              causeId: verdict.id,
              reasons,
              rollbackPath: service.rollbackPath,
              required: service.approvalsRequired,
              at,
            },
            proposalIdFor,
          );
    const ours = draft?.id ?? null;
    const known = await deps.blocks.get(blockKey(verdict.service));
    if (known !== null && known.value.at > at) return; // a newer verdict already decided
    if (draft !== null) await propose(deps, draft, verdict);

    // Set inside the compare-and-set callback (which may run more than once): the last run wins.
    const seen: { previous: string | null; stale: boolean } = { previous: null, stale: false };
    await deps.blocks.mutate(blockKey(verdict.service), (current) => {
      seen.stale = current !== null && current.value.at > at;
      seen.previous = null;
      if (seen.stale || (current !== null && current.value.at === at)) return undefined;
      seen.previous = current?.value.proposalId ?? null;
      return { proposalId: ours, at };
    });
    const { previous, stale } = seen;
    if (stale && ours !== null) {
      await supersede(deps, ours, null, "a newer verdict replaced it", at);
      return;
    }
    if (previous !== null && previous !== ours) {
      const why = ours === null ? "promotion is allowed again" : "a newer verdict replaced it";
      await supersede(deps, previous, ours, why, at);
    }
  };

/**
 * A canary step that baked healthy gets one promote-canary proposal to the next weight. Its cause
 * is the step itself (service, weight, since), so however often or late its bake is reported,
 * one proposal per step.
 */
export const onCanaryHealthy =
  (deps: ProposalDeps) =>
  async (healthy: Envelope<"governance.canary-healthy">): Promise<void> => {
    const service = deps.serviceFor(healthy.service);
    if (service?.rollbackPath === null || service === undefined) return; // no manifest path to edit
    await propose(
      deps,
      promoteCanaryProposal(
        {
          service: healthy.service,
          causeId: `canary:${healthy.data.weight}:${healthy.data.since}`,
          path: service.rollbackPath,
          from: healthy.data.weight,
          to: healthy.data.next,
          required: service.approvalsRequired,
          at: healthy.data.evaluatedAt,
        },
        proposalIdFor,
      ),
      healthy,
    );
  };

/**
 * What the git actuator did: an executed action makes its proposal `executed`, an ambiguous one
 * `needs-triage`. A preview that found the rollback would re-apply harm (`harm`) makes a pending
 * proposal `needs-triage` before anyone approves it. Any other dry run, or a retryable failure,
 * changes nothing.
 */
export const onActionOutcome =
  (deps: ProposalDeps) =>
  async (
    outcome: Envelope<"governance.action-completed"> | Envelope<"governance.action-failed">,
  ): Promise<void> => {
    if (outcome.type === "governance.action-failed" && outcome.data.harm !== undefined) {
      if ((await deps.proposals.get(outcome.data.proposalId)) === null) return; // not ours
      await decide(deps, outcome.data.proposalId, (p) => {
        const next =
          outcome.data.dryRun === true
            ? recordPreviewRefusal(p)
            : recordActionOutcome(p, "needs-triage");
        return { ok: true, proposal: next, changed: next !== p, nowApproved: false };
      });
      return;
    }
    const state =
      outcome.type === "governance.action-completed"
        ? outcome.data.dryRun
          ? null
          : "executed"
        : outcome.data.needsTriage && outcome.data.dryRun !== true
          ? "needs-triage"
          : null;
    if (state === null) return;
    if ((await deps.proposals.get(outcome.data.proposalId)) === null) return; // not ours
    await decide(deps, outcome.data.proposalId, (p) => {
      const next = recordActionOutcome(p, state);
      return { ok: true, proposal: next, changed: next !== p, nowApproved: false };
    });
  };
