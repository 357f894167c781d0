export { incidentIdFor, onEvaluation } from "./handlers/evaluation.js";
export type { IncidentDeps } from "./handlers/evaluation.js";
export { incidentService } from "./service.js";
export { ServiceRecord } from "./store.js";
export { indexKey, onTransitionCommand, toView } from "./handlers/transition.js";
export type { TransitionDeps } from "./handlers/transition.js";
export { IncidentIndex } from "./store.js";
export { onActionCompleted } from "./handlers/action.js";
export type { ActionDeps } from "./handlers/action.js";
