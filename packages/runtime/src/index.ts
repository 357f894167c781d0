/**
 * @packageDocumentation
 * The shell every service runs in: validated configuration, one pino logger, health, readiness
 * and metrics endpoints, and an orderly shutdown.
 */
export { ConfigError, loadConfig, loadGitCredentials, pickConfig, redactConfig } from "./config.js";
export type { Config, ConfigProblem, GitCredentials, LogLevel } from "./config.js";
export { startHealthServer } from "./health.js";
export type { HealthPhase, HealthServer, HealthServerOptions, ReadinessCheck } from "./health.js";
export { createServiceRegistry, runService, startService, superviseService } from "./lifecycle.js";
export type {
  RunningService,
  ServiceContext,
  ServiceDefinition,
  ServiceHandle,
  ServiceHost,
  ShutdownOutcome,
  StartOptions,
  SuperviseOptions,
} from "./lifecycle.js";
export { REDACTED_PATHS, createLogger, withCorrelation } from "./logger.js";
export type { Logger, LoggerOptions } from "./logger.js";
export { redactCredentials, redactUrl } from "./secrets.js";
export { CatalogLoadError, loadServiceCatalog, openServiceBus } from "./wiring.js";
