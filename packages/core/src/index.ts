/**
 * @packageDocumentation
 * SafeDeploy's decisions as pure functions: inputs and `now` in, state, events or plans out.
 * No I/O, no clock, no randomness.
 */
export {
  DEFAULT_BURN_RULES,
  SEVERITY_RANK,
  budgetRemaining,
  burnRate,
  errorBudget,
  errorRatio,
  evaluateSlo,
  eventsInWindow,
  requiredWindows,
} from "./budget.js";
export type { BurnRule, SloEvaluation, SloTarget } from "./budget.js";
