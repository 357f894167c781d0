export { createReleaseTrainService, releaseTrainService } from "./service.js";
export type { ReleaseTrainOptions } from "./service.js";
export { ProposalRecord, TrainIndex, TrainRecord } from "./store.js";
