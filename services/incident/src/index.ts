export { incidentIdFor, onEvaluation } from "./handlers/evaluation.js";
export type { IncidentDeps } from "./handlers/evaluation.js";
export { incidentService } from "./service.js";
export { ServiceRecord } from "./store.js";
