export { createReleaseTrainService, releaseTrainService } from "./service.js";
export type { ReleaseTrainOptions } from "./service.js";
export { TrainIndex, TrainRecord } from "./store.js";
