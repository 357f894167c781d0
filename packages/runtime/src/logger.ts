import { pino } from "pino";
import type { DestinationStream, Logger } from "pino";
import type { LogLevel } from "./config.js";
import { redactCredentials } from "./secrets.js";

export type { Logger } from "pino";

/** Field names whose value is a secret wherever it appears. */
const SECRET_FIELDS = [
  "password",
  "passwd",
  "token",
  "secret",
  "apiKey",
  "accessToken",
  "refreshToken",
  "privateKey",
  "authorization",
  "Authorization",
  "cookie",
  "githubToken",
  "GITHUB_TOKEN",
  "SAFEDEPLOY_TOKEN",
];
const SECRET_HEADERS = ["authorization", "Authorization", "cookie", '"set-cookie"', '"x-api-key"'];

/**
 * Paths pino masks (as `***`) in every log object: the secret fields at the top level and up to
 * two objects deep, and credential headers under any `headers` up to three objects deep. Secrets
 * inside text, such as a connection string's password, are masked on the whole line instead.
 */
export const REDACTED_PATHS: readonly string[] = [
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
  ...SECRET_HEADERS.flatMap((header) =>
    ["headers", "*.headers", "*.*.headers"].map((headers) =>
      header.startsWith('"') ? `${headers}[${header}]` : `${headers}.${header}`,
    ),
  ),
];

/** What {@link createLogger} needs: the service's name, a level, and optionally where to write. */
export interface LoggerOptions {
  readonly service: string;
  /** Default `info`. */
  readonly level?: LogLevel;
  /** Default: standard output, written synchronously. */
  readonly destination?: DestinationStream;
}

/**
 * The process's one logger: JSON lines with `service`, a level label and an ISO `time`. Secret
 * fields are masked by path ({@link REDACTED_PATHS}) and every line goes through
 * {@link redactCredentials}, so a password in a URL or a token echoed in an error message is
 * masked too. `err` and `error` fields holding an Error are serialised with message and stack.
 * Components take a child: `log.child({ component: "consumer" })`.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: "***" },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: redactCredentials },
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
