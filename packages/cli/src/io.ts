/** Where a command writes and what it reads: injected so commands run in tests as in a shell. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** Exit codes of the contract: 0 success, 1 a negative answer (invalid, broken, differs), 2 usage. */
export const EXIT = { ok: 0, negative: 1, usage: 2, blocked: 3 } as const;

/** A wrong invocation: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}
