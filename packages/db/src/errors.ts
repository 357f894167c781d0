/**
 * Which PostgreSQL failures are worth retrying: lost connections, a server shutting down,
 * serialization failures and deadlocks. Constraint violations and bad SQL are terminal.
 */
const RETRYABLE_SQLSTATES = new Set(["40001", "40P01", "57P01", "57P02", "57P03", "53300"]);
const RETRYABLE_NODE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

function codeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code = error.code;
  return typeof code === "string" ? code : undefined;
}

export function isRetryableDbError(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isRetryableDbError);
  const code = codeOf(error);
  if (code !== undefined) {
    // Class 08: connection exceptions.
    if (code.startsWith("08") || RETRYABLE_SQLSTATES.has(code) || RETRYABLE_NODE_CODES.has(code)) {
      return true;
    }
    return false;
  }
  const message = error instanceof Error ? error.message : String(error);
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    message,
  );
}

/** True for a unique-key violation: the row is already there (the idempotent path). */
export function isUniqueViolation(error: unknown): boolean {
  return codeOf(error) === "23505";
}
