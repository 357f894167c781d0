import { openKv } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { ProposalRecord } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";

/**
 * Records the proposal behind an action as the proposal service would, in the bucket the git
 * actuator checks before it acts: by default approved by one person of one required, with the
 * action's own plan.
 */
export async function recordProposal(
  bus: Bus,
  action: Envelope<"governance.action-requested">,
  overrides: Partial<ProposalRecord> = {},
): Promise<void> {
  const proposals = await openKv(bus, "proposals", ProposalRecord);
  const id = overrides.id ?? action.data.proposalId;
  const record: ProposalRecord = {
    id,
    key: `key:${id}`,
    service: action.service,
    incidentId: action.data.incidentId,
    kind: action.data.kind,
    state: "approved",
    createdAt: action.data.requestedAt,
    causeId: "cause",
    summary: `proposal ${id}`,
    plan: action.data.plan,
    approvals: [{ by: "ana", at: action.data.requestedAt, reason: "looks right" }],
    required: 1,
    ...overrides,
  };
  const current = await proposals.get(id);
  if (current === null) await proposals.create(id, record);
  else await proposals.update(id, record, current.revision);
}
