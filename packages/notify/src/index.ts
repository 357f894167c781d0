/**
 * @packageDocumentation
 * Outbound notifications: which events become which notifications and for whom, their webhook
 * body and Slack Block Kit rendering, Standard Webhooks and Slack signatures, the retry
 * schedule, the delivery record, and one bounded HTTP attempt (`fetch` passed in).
 */
export {
  DeliveryRecord,
  STANDARD_RETRY_SCHEDULE_MS,
  classifyStatus,
  isSettled,
  postOnce,
  recordAttempt,
  retryDelayMs,
} from "./delivery.js";
export type { AttemptOutcome, Fetch } from "./delivery.js";
export { parseInteraction } from "./interactivity.js";
export type { ParsedInteraction, SlackDecision } from "./interactivity.js";
export {
  awaitsPreview,
  notificationsOf,
  notifiersFor,
  proposalAnnouncement,
} from "./notification.js";
export type {
  IncidentFacts,
  Notification,
  NotificationContext,
  NotifierTarget,
  ProposalFacts,
} from "./notification.js";
export { linksOf, slackEscape, slackMessage, slackOutcome, webhookBody } from "./render.js";
export type { Links, SlackBlock, SlackMessage } from "./render.js";
export {
  SLACK_TOLERANCE_SECONDS,
  SigningKeyError,
  deliveryId,
  slackSignature,
  standardWebhookHeaders,
  standardWebhookSignature,
  verifySlackRequest,
  webhookKey,
} from "./signing.js";
export type { SlackVerification } from "./signing.js";
