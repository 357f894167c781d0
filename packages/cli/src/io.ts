/** Where a command writes and what it reads: injected so commands run in tests as in a shell. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are read from; the process's working directory when absent. */
  readonly cwd?: string | undefined;
}

/** One run of the command line: its arguments (without `node` and the script) and its effects. */
export interface CliInvocation extends CliIo {
  readonly argv: readonly string[];
}

/** Exit codes of the contract: 0 success, 1 a negative answer (invalid, broken, differs), 2 usage, 3 blocked. */
export const EXIT = { ok: 0, negative: 1, usage: 2, blocked: 3, unknown: 4 } as const;

/** A wrong invocation: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * One `safedeploy` subcommand, in its own file under `src/commands/`. `run` gets the arguments
 * after the command's name (never `--help`: the dispatcher prints `usage` for that), parses them
 * with `node:util` `parseArgs`, writes only through `io`, and returns the exit code. A
 * {@link UsageError} or a `parseArgs` error becomes exit 2 with the usage.
 */
export interface Command {
  readonly name: string;
  /** One line for the tool's help. */
  readonly summary: string;
  /** The command's `--help`: synopsis first, then what it does. */
  readonly usage: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}
