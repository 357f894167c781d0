export { onEvaluation } from "./handlers/evaluation.js";
export { onVerdict } from "./handlers/verdict.js";
export type { IncidentDeps } from "./handlers/evaluation.js";
export { incidentService } from "./service.js";
export { ServiceRecord } from "./store.js";
export { onTransitionCommand, toView } from "./handlers/transition.js";
export {
  transitionCurrent,
  flushOutbox,
  foldIntoRecord,
  incidentIdFor,
  indexKey,
  transitionedEvent,
} from "./record.js";
export type { RecordDeps } from "./record.js";
export type { TransitionDeps } from "./handlers/transition.js";
export { IncidentIndex } from "./store.js";
export { onActionCompleted } from "./handlers/action.js";
export type { ActionDeps } from "./handlers/action.js";
