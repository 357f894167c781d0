/**
 * @packageDocumentation
 * The SafeDeploy gateway: the REST API of CONTRACT.md over the PostgreSQL read model, writes as
 * NATS commands, bearer tokens by role, server-sent events from the audit log, and the dashboard.
 */
export { DEFAULT_RATE_LIMIT, buildGateway, gatewayApp } from "./app.js";
export type { GatewayDeps, SendCommand } from "./deps.js";
export { ApiError, ErrorBody } from "./errors.js";
export type { ApiErrorCode } from "./errors.js";
export { createGatewayService, gatewayOptionsFromEnv, gatewayService } from "./service.js";
export type { GatewayOptions } from "./service.js";
export { SLACK_RESPONSE_ORIGIN, parseSlackUsers, slackFromEnv } from "./routes/slack.js";
export type { SlackIntegration } from "./routes/slack.js";
export {
  ROLES,
  TokenFileError,
  loadTokens,
  parseTokens,
  roleAllows,
  tokenHash,
  tokenStore,
} from "./tokens.js";
export type { Principal, Role, TokenStore } from "./tokens.js";
