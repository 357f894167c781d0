/**
 * @packageDocumentation
 * The shell every service runs in: validated configuration, one pino logger, health, readiness
 * and metrics endpoints, and an orderly shutdown.
 */
export { ConfigError, loadConfig, loadGitCredentials, redactConfig, redactUrl } from "./config.js";
export type { Config, GitCredentials, LogLevel } from "./config.js";
export { startHealthServer } from "./health.js";
export type { HealthServer, HealthServerOptions, ReadinessCheck } from "./health.js";
export { runService, startService } from "./lifecycle.js";
export type {
  RunningService,
  ServiceContext,
  ServiceDefinition,
  ServiceHandle,
} from "./lifecycle.js";
export { REDACTED_PATHS, createLogger, withCorrelation } from "./logger.js";
export type { Logger } from "./logger.js";
export { CatalogLoadError, loadServiceCatalog, openServiceBus } from "./wiring.js";
