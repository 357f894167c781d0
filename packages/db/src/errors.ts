/**
 * The adapter's error vocabulary. Every error it creates carries `retryable`: true when the same
 * call may succeed later (the server is restarting, a connection dropped, a transaction lost a
 * race), false when retrying cannot help (bad SQL, a constraint, an edited migration).
 */

/** A migration could not be applied, or the recorded history no longer matches the code. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
  readonly retryable: boolean;
  /** The migration concerned, as `NNNN_name`, when there is one. */
  readonly migration: string | undefined;
  constructor(
    message: string,
    options: { migration?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.migration = options.migration;
    this.retryable =
      options.retryable ?? ("cause" in options ? isRetryableDbError(options.cause) : false);
  }
}

/** The database did not answer a readiness check in time, or answered with an error. */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
  readonly retryable: boolean;
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.retryable =
      options.retryable ?? ("cause" in options ? isRetryableDbError(options.cause) : true);
  }
}

/**
 * SQLSTATEs worth retrying besides class 08 (connection exception): admin/crash shutdown and
 * "cannot connect now" (57P01-57P03), serialization failure (40001), deadlock (40P01), too many
 * connections (53300).
 */
const RETRYABLE_SQLSTATES = new Set(["40001", "40P01", "57P01", "57P02", "57P03", "53300"]);

/**
 * Socket errors of a server that is down, restarting or briefly unresolvable (a container being
 * replaced). A wrong host name looks the same as the last two; a readiness check surfaces it.
 */
const RETRYABLE_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** What `pg` says, without a code, when a connection dies or never comes up in time. */
const RETRYABLE_PG_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/** The SQLSTATE (`23505`) or socket code (`ECONNREFUSED`) of an error, if it has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}

/**
 * Whether a failed database call may succeed if tried again: lost or refused connections (class
 * 08, `ECONNREFUSED`, `ECONNRESET`, …), a server shutting down or starting (57P01-57P03),
 * serialization failures (40001) and deadlocks (40P01). Syntax errors, constraint violations and
 * anything unknown are terminal. Errors of this package answer with their own `retryable`; a
 * wrapper without a code is judged by its `cause`.
 */
export function isRetryableDbError(error: unknown): boolean {
  return classify(error, 0);
}

function classify(error: unknown, depth: number): boolean {
  if (typeof error !== "object" || error === null || depth > 8) return false;
  if ("retryable" in error && typeof error.retryable === "boolean") return error.retryable;
  // Node reports a refused connect to every address of a host name as one AggregateError.
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.some((inner) => classify(inner, depth + 1));
  }
  const code = errorCode(error);
  if (code !== undefined) {
    return (
      code.startsWith("08") || RETRYABLE_SQLSTATES.has(code) || RETRYABLE_SOCKET_CODES.has(code)
    );
  }
  if (error instanceof Error && RETRYABLE_PG_MESSAGES.test(error.message)) return true;
  return "cause" in error ? classify(error.cause, depth + 1) : false;
}

/** True for a unique-key violation (23505): the row is already there, the idempotent path. */
export function isUniqueViolation(error: unknown): boolean {
  return errorCode(error) === "23505";
}
