import { pino } from "pino";
import type { DestinationStream, Logger } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger } from "pino";

/** Paths pino masks wherever they appear in a log object. */
export const REDACTED_PATHS = [
  "password",
  "token",
  "secret",
  "authorization",
  "GITHUB_TOKEN",
  "githubToken",
  "*.password",
  "*.token",
  "*.secret",
  "*.authorization",
  "*.githubToken",
  "headers.authorization",
  "req.headers.authorization",
  "*.headers.authorization",
];

/** The process's one logger: JSON lines with the service name and ISO timestamps. */
export function createLogger(options: {
  service: string;
  level?: LogLevel;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "***" },
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous stdout: lines keep their order and none is lost when the process exits.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A child logger for one causal chain, so every line it writes carries the correlation id. */
export function withCorrelation(
  logger: Logger,
  ids: { correlationId: string; causationId?: string | null },
): Logger {
  return logger.child({
    correlationId: ids.correlationId,
    ...(ids.causationId === undefined || ids.causationId === null
      ? {}
      : { causationId: ids.causationId }),
  });
}
