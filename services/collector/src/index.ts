export { collectorService } from "./service.js";
export { onPollJob } from "./handlers/poll.js";
export type { CollectedService, PollDeps } from "./handlers/poll.js";
export { startScheduler } from "./scheduler.js";
