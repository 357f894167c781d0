/**
 * @packageDocumentation
 * The wire contract of SafeDeploy: catalog documents, message envelopes, events, commands,
 * stream and subject names. zod schemas with their inferred types; nothing else.
 */
export {
  Duration,
  HttpUrl,
  ResourceName,
  Timestamp,
  formatDuration,
  parseDuration,
} from "./primitives.js";
export {
  ACTIVE_INCIDENT_STATES,
  Actor,
  BudgetStatus,
  Burn,
  GateReason,
  GateVerdictKind,
  IncidentClass,
  IncidentOrigin,
  IncidentState,
  ProposalKind,
  ProposalState,
  Severity,
} from "./domain.js";
export {
  AnyEnvelope,
  AppliedBurnRule,
  DeadLetter,
  EVENT_DATA,
  EVENT_TYPES,
  EnvelopeHeader,
  RevertTarget,
  RollbackHarm,
  SliWindow,
  EvaluatedSlo,
  SloSnapshot,
  VerdictEvidence,
  createEnvelope,
  envelopeSchema,
  messageId,
} from "./events.js";
export type { Envelope, EventData, EventType, NewEvent } from "./events.js";
export {
  Approval,
  CanaryView,
  FreezeView,
  GateView,
  GuardView,
  IncidentTransition,
  IncidentView,
  FollowUpView,
  ProposalAction,
  ProposalView,
  TrainStepView,
  TrainView,
} from "./views.js";
export {
  CanaryWeightPlan,
  ImagePlan,
  PLAN_ACTIONS,
  PatchPlan,
  PausePlan,
  PlanPath,
  ProposalPlan,
  RecordOnlyPlan,
  RevertPlan,
  planFitsKind,
} from "./plans.js";
export type { PlanAction } from "./plans.js";
export { ChainHead, ProposalRecord } from "./records.js";
export { canonicalJson } from "./json.js";
export { COMMANDS, CommandError, DeployRecord, commandReply } from "./commands.js";
export type { CommandName, CommandReply, CommandRequest, CommandResult } from "./commands.js";
export {
  DEFAULT_NAMESPACE,
  STREAMS,
  STREAM_DOMAINS,
  commandSubject,
  deadLetterSubject,
  eventSubject,
  eventSubjectFilter,
  qualifiedName,
  serviceOfSubject,
  subjectMismatch,
  streamOfEventType,
  streamSubjectFilter,
} from "./subjects.js";
export type { Domain, Namespace, StreamName } from "./subjects.js";
export {
  AUDIT_ANCHOR_BUCKET,
  AUDIT_CONSUMERS,
  NOTIFIER_CONSUMERS,
  SAFEDEPLOY_TOPOLOGY,
} from "./topology.js";
export type {
  BucketDeclaration,
  ConsumerDeclaration,
  StreamDeclaration,
  Topology,
} from "./topology.js";
export {
  API_VERSION,
  BurnRateRule,
  CatalogDocument,
  DEFAULT_POLICY_SPEC,
  DeployedWhen,
  Deployment,
  FreezeWindowDocument,
  HealthCheck,
  Hook,
  PartialPolicySpec,
  PolicyDocument,
  PolicySpec,
  ReleaseTrainDocument,
  RepoPath,
  STALE_AFTER_POLL_INTERVALS,
  ServiceDocument,
  Slo,
  TrainStep,
  isJsonPath,
  resolvePolicy,
  rruleProblem,
  staleAfterMs,
} from "./catalog.js";
export {
  ACTION_REQUEST_READERS,
  APPROVED_ACTION_CONSUMER,
  APPROVED_ACTION_EVENT,
  FORBIDDEN_JS_API,
  NATS_USERS,
  PROVISIONER_USER,
  SERVICE_ACCESS,
  SERVICE_FORBIDDEN_JS_API,
  SERVICE_USERS,
  deliversApprovedActions,
  durableFilter,
  inboxPrefix,
  isInboxToken,
  natsPermissionsConfig,
  passwordVariable,
  provisionerPermissions,
  servicePermissions,
} from "./permissions.js";
export {
  MAX_NOTIFY_ATTEMPTS,
  NOTIFICATION_KINDS,
  NotificationDelivered,
  NotificationFailed,
  NotificationKind,
  NotifierDocument,
} from "./notifications.js";
export type {
  NatsUser,
  PermissionOptions,
  ServiceAccess,
  ServiceUser,
  UserPermissions,
} from "./permissions.js";
