/**
 * @packageDocumentation
 * SafeDeploy's decisions as pure functions: inputs and `now` in, state, events or plans out.
 * No I/O, no clock, no randomness.
 */
export {
  DEFAULT_BURN_RULES,
  BURN_RANK,
  SEVERITY_RANK,
  budgetRemaining,
  budgetStatus,
  burnRate,
  errorBudget,
  errorRatio,
  evaluateSlo,
  eventsInWindow,
  requiredWindows,
} from "./budget.js";
export type { BurnRule, SloEvaluation, SloTarget } from "./budget.js";
export { escapeLabelValue, hasWindowPlaceholder, labelMatcher, renderSliQuery } from "./promql.js";
export { errorRatioRecord, recordingRuleGroups, sloLabels, totalRateRecord } from "./rules.js";
export type { RecordingRule, RuleGroup, RuleSlo } from "./rules.js";
export {
  directQueries,
  isNearOutage,
  isStaleJob,
  mayRetryPoll,
  outageWindows,
  pollJobMaxLagMs,
  pollIntervalAt,
  pollJobs,
  recordedQueries,
  sliWindow,
  snapshotEvent,
} from "./collector.js";
export type { Measurement, PollInterval, SnapshotSlo } from "./collector.js";
export {
  ACTIVE_STATES,
  INCIDENT_TRANSITIONS,
  incidentClass,
  incidentTimings,
  isActive,
  isWorseClass,
  transitionIncident,
} from "./incident.js";
export type {
  Incident,
  Initiator,
  Transition,
  TransitionRefusal,
  TransitionResult,
} from "./incident.js";
export {
  CLOCK_SKEW_MS,
  UNKNOWN_REASON_CODES,
  activeFreezes,
  activeGuards,
  decideExhaustionFreeze,
  exhaustionFreeze,
  gateDeclaration,
  gateVerdict,
  verdictOf,
  withEvaluation,
} from "./gate.js";
export type { FreezeWindow, GateInput, GateVerdict, ReleaseGuard, SloStatus } from "./gate.js";
export { EMPTY_SERVICE_STATE, budgetOf, burnOf, decideIncident } from "./incident-decision.js";
export type {
  EvaluationInput,
  SloIncidentStatus,
  IncidentDecision,
  IncidentDecisionEvent,
  IncidentPolicy,
  ServiceIncidentState,
} from "./incident-decision.js";
export {
  approveProposal,
  blockPromotionProposal,
  promoteCanaryProposal,
  promotionProposal,
  proposalKey,
  recordActionOutcome,
  recordPreviewRefusal,
  rejectProposal,
  revertProposal,
  rollbackProposal,
  supersedeProposal,
} from "./proposal.js";
export type { ApprovalRecord, ApprovalResult, Proposal } from "./proposal.js";
export {
  STRUCTURAL_REASON_CODES,
  decidePolicyIncident,
  structuralViolations,
} from "./policy-incident.js";
export type { VerdictInput } from "./policy-incident.js";
export { canaryReadiness, nextCanaryWeight } from "./canary.js";
export type { CanaryReadiness, CanaryState } from "./canary.js";
export {
  CLOCK_CAUSE_PREFIX,
  REPLAY_KINDS,
  START_CAUSE_PREFIX,
  changedDecisions,
  firstDifference,
  replayService,
} from "./replay.js";
export type {
  ReplayDecision,
  ReplayDifference,
  ReplayKind,
  ReplayPolicy,
  ReplayResult,
} from "./replay.js";
export { DEFAULT_MIN_BASELINE_RATIO, describeChange, planTrain } from "./release-plan.js";
export type {
  PlanError,
  PlanResult,
  PlannedChange,
  PlannedFollowUp,
  PlannedDeployedWhen,
  PlannedStep,
  PlanService,
  PromotionStrategy,
  RegressionRule,
  TrainPlan,
} from "./release-plan.js";
export {
  detectRegression,
  evaluateHealthCheck,
  haltsTrain,
  jsonEqual,
  readJsonPath,
  seriesKey,
  worstOutcome,
} from "./release-checks.js";
export type {
  CheckFailure,
  CheckOutcome,
  CheckResult,
  ErrorCounts,
  ErrorSeries,
  HaltOn,
  HealthObservation,
  RegressionFinding,
  RegressionResult,
} from "./release-checks.js";
export {
  DEPLOY_PROBE_INTERVAL_MS,
  attributeFailure,
  checkTargets,
  decideTrain,
  deployProbeDelayMs,
  promotionHook,
  promotionPlan,
  releaseManifest,
  reportFailure,
  startTrain,
} from "./release.js";
export type {
  Attribution,
  CheckTarget,
  FollowUpPhase,
  FollowUpState,
  HookChange,
  HookPayload,
  HookRecord,
  ManifestEntry,
  PromotionApproval,
  PromotionPlan,
  ReleaseManifest,
  StepApproval,
  StepGate,
  StepPhase,
  StepReport,
  StepState,
  TrainAction,
  TrainDecision,
  TrainEvent,
  TrainEventType,
  TrainNewEvent,
  TrainState,
  TrainStatus,
} from "./release.js";
export {
  freezeId,
  guardId,
  hookIdempotencyKey,
  parseTrainActionId,
  promotionProposalId,
} from "./ids.js";
export type { HookName } from "./ids.js";
export {
  actionableReasons,
  decideFreeze,
  decideVerdict,
  rollbackAnswers,
  sameVerdict,
} from "./governance.js";
export type { FreezeDecision, RecordedVerdict } from "./governance.js";
export { authorizeAction, authorizingProposalId } from "./authority.js";
export type { ActionAuthority, RefusalCode, RequestedAction } from "./authority.js";
