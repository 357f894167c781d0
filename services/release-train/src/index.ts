export { createReleaseTrainService, releaseTrainService } from "./service.js";
export type { ReleaseTrainOptions } from "./service.js";
export { TrainClaim, TrainListing, TrainRecord } from "./store.js";
