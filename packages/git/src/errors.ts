/**
 * The adapter's error vocabulary. Every error says whether retrying can help (`retryable`), which
 * is all the caller's consumer loop needs; messages never carry a credential.
 */

/** Masks credentials in URLs (`https://user:token@host` → `https://***@host`) and bearer tokens. */
export function redactSecrets(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1***@")
    .replace(/(authorization:\s*(?:bearer|token|basic)\s+)\S+/gi, "$1***")
    .replace(/\b(gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{10,})\b/g, "***");
}

/** A `git` command failed. Network commands are retryable unless the remote refused our credentials. */
export class GitCommandError extends Error {
  override readonly name = "GitCommandError";
  readonly retryable: boolean;
  /** The git subcommand, e.g. `push`. */
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(
    command: string,
    exitCode: number | null,
    stderr: string,
    retryable: boolean,
    options?: { cause?: unknown },
  ) {
    const clean = redactSecrets(stderr.trim());
    super(
      `git ${command} failed (exit ${exitCode ?? "signal"}): ${clean.slice(0, 2_000)}`,
      options,
    );
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = clean;
    this.retryable = retryable;
  }
}

/** The forge (GitHub) refused or failed a request. */
export class ForgeError extends Error {
  override readonly name = "ForgeError";
  readonly retryable: boolean;
  /** HTTP status, or undefined when no response came back (network). */
  readonly status: number | undefined;
  /** How long the forge asked us to wait (Retry-After, rate-limit reset), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    fields: { status: number | undefined; retryable: boolean; retryAfterMs?: number | undefined },
    options?: { cause?: unknown },
  ) {
    super(redactSecrets(message), options);
    this.status = fields.status;
    this.retryable = fields.retryable;
    this.retryAfterMs = fields.retryAfterMs;
  }
}

/** A request the adapter refuses outright (an unsafe path, a branch name git would reject). */
export class InvalidChangeError extends Error {
  override readonly name = "InvalidChangeError";
  readonly retryable = false;
}
