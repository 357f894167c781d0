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
  evaluateSnapshot,
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
  sloSnapshot,
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
  withEvaluations,
} from "./gate.js";
export type { FreezeWindow, GateInput, GateVerdict, ReleaseGuard, SloStatus } from "./gate.js";
export {
  EMPTY_SERVICE_STATE,
  budgetOf,
  burnOf,
  decideIncident,
  decideIncidentOnEvaluation,
} from "./incident-decision.js";
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
export { DEFAULT_MIN_BASELINE_RATIO, describeChange, planTrain } from "./release/plan.js";
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
} from "./release/plan.js";
export {
  detectRegression,
  evaluateHealthCheck,
  haltsTrain,
  jsonEqual,
  readJsonPath,
  seriesKey,
  worstOutcome,
} from "./release/checks.js";
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
} from "./release/checks.js";
export { DEPLOY_PROBE_INTERVAL_MS, deployProbeDelayMs } from "./release/deploy.js";
export { attributeFailure, reportFailure } from "./release/attribution.js";
export { checkTargets } from "./release/state.js";
export { decideTrain, startTrain } from "./release/decide.js";
export { promotionHook } from "./release/hooks.js";
export { promotionPlan } from "./release/promote.js";
export { releaseManifest } from "./release/manifest.js";
export type { ManifestEntry, ReleaseManifest } from "./release/manifest.js";
export { verdictOfGateView } from "./release/gate.js";
export { GUARD_EVIDENCE_LINES, GUARD_REASON_CHARS, effectOf } from "./release/effects.js";
export type { ChangeRequest, TrainEffect } from "./release/effects.js";
export { TRAIN_RETENTION, decideClaim, newestTrains, trainsToForget } from "./release/registry.js";
export type { ClaimDecision, TrainClaim, TrainListing } from "./release/registry.js";
export { decisionEvent, dueTrainEvent, hookReport, isTrainActive } from "./release/due.js";
export type { ActuatorReport, PromotionDecision, TrainInbox } from "./release/due.js";
export type {
  Attribution,
  CheckTarget,
  FollowUpPhase,
  FollowUpState,
  HookChange,
  HookPayload,
  HookRecord,
  PromotionApproval,
  StepApproval,
  StepGate,
  StepPhase,
  StepReport,
  StepState,
  TrainState,
  TrainStatus,
} from "./release/types.js";
export type {
  PromotionPlan,
  TrainAction,
  TrainDecision,
  TrainEvent,
  TrainEventType,
  TrainNewEvent,
} from "./release/protocol.js";
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
export { DEPLOY_TRIGGERS, deploysOf, doraReport, durationStats } from "./dora.js";
export type {
  Deploy,
  DoraDeployEvent,
  DoraIncident,
  DoraInput,
  DoraMetrics,
  DoraReport,
  DoraRollback,
  DurationStats,
} from "./dora.js";
export { sloSeries } from "./slo-history.js";
export type { ChartMarker, EvaluationPoint, SloSeries } from "./slo-history.js";
export {
  canaryStepOf,
  deployBeforeBurn,
  deployEventId,
  liveRevisionAt,
  describeDeployBeforeBurn,
  rollbackTarget,
  serviceOfApp,
  shortRevision,
} from "./deploys.js";
export type { CanaryStepOutcome, DeployEvent, HistoryCommit, RollbackTarget } from "./deploys.js";
export {
  NEXT_OPENING_HORIZON_DAYS,
  compileFreezeWindow,
  evaluateFreezeWindows,
  freezeWindowOf,
  selectsService,
} from "./freeze-window.js";
export type {
  CompiledFreezeWindow,
  FreezeOverride,
  FreezeWindowReason,
  FreezeWindowState,
  RecurringFreezeWindow,
} from "./freeze-window.js";
