export { blockKey, onActionOutcome, onCanaryHealthy, onVerdict } from "./governance.js";
export {
  approve,
  onIncidentEscalated,
  onIncidentOpened,
  proposalIdFor,
  propose,
  reject,
  requestRevert,
  supersede,
  toView,
} from "./proposals.js";
export type { ProposalDeps } from "./proposals.js";
export { proposalService } from "./service.js";
export { BlockIndex, ProposalRecord } from "./store.js";
