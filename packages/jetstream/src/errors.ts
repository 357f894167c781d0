/**
 * The adapter's error vocabulary. A handler signals how its failure should be treated by the
 * class it throws; the consumer loop maps that to nak (retry) or dead-letter + term in one place.
 */

/** A failure that will not go away on retry (bad data, a refused decision): dead-letter at once. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  readonly retryable = false;
}

/** A compare-and-set on a KV key lost a race: someone else wrote the key first. */
export class KvConflictError extends Error {
  override readonly name = "KvConflictError";
  readonly retryable = true;
  readonly bucket: string;
  readonly key: string;
  readonly expectedRevision: number;
  constructor(
    bucket: string,
    key: string,
    expectedRevision: number,
    options?: { cause?: unknown },
  ) {
    super(
      `conflict on ${bucket}/${key}: expected revision ${expectedRevision}, the key has moved on`,
      options,
    );
    this.bucket = bucket;
    this.key = key;
    this.expectedRevision = expectedRevision;
  }
}

/** A command reply said no, or the command could not be delivered. */
export class CommandFailedError extends Error {
  override readonly name = "CommandFailedError";
  readonly code: string;
  readonly details: readonly unknown[] | undefined;
  constructor(code: string, message: string, details?: readonly unknown[]) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** Whether an error thrown by a handler should be retried rather than dead-lettered. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof TerminalError) return false;
  if (typeof error === "object" && error !== null && "retryable" in error) {
    return error.retryable !== false;
  }
  return true;
}

/** A short, single-line description of an error for logs and dead letters. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
