export { approve, onIncidentOpened, proposalIdFor, reject, toView } from "./proposals.js";
export type { ProposalDeps } from "./proposals.js";
export { proposalService } from "./service.js";
export { ProposalRecord } from "./store.js";
