/**
 * @packageDocumentation
 * The git actuator service: approved actions in, branches and pull requests in the environment
 * repo out, results on GOVERNANCE.
 */
export { onActionRequested } from "./actuator.js";
export type { ActuatorDeps } from "./actuator.js";
export { gitPlanFor } from "./plan.js";
export type { GitPlan } from "./plan.js";
export { createGitActuatorService } from "./service.js";
