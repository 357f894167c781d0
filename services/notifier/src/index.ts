export { createNotifierService, notifierOptionsFromEnv } from "./service.js";
export type { NotifierOptions } from "./service.js";
