import { execFile } from "node:child_process";
import { GitCommandError } from "./errors.js";

/** One `git` invocation: argv only, never a shell. */
export interface GitInvocation {
  readonly cwd: string;
  readonly args: readonly string[];
  /** Written to the command's standard input. */
  readonly input?: string;
  /** Added to the environment (author, dates, auth header config). */
  readonly env?: Readonly<Record<string, string>>;
  /** Exit codes that are answers, not failures (e.g. 2 from `ls-remote --exit-code`). */
  readonly okExitCodes?: readonly number[];
  readonly timeoutMs?: number;
}

export interface GitResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

const NETWORK = new Set(["fetch", "push", "ls-remote", "clone"]);
const REFUSED =
  /authentication failed|permission denied|could not read (username|password)|403|401|repository not found|does not appear to be a git repository/i;
const LOCKED = /\.lock': File exists|unable to create .*\.lock/i;

/**
 * Runs `git` with a predictable environment: no prompts, literal pathspecs, C locale, and neither
 * system nor global configuration (a user's `diff.noprefix` or `core.autocrlf` would change patches
 * and blobs, hence shas). HTTPS credentials come from the forge (see `httpToken`), SSH from ssh.
 */
export function runGit(invocation: GitInvocation): Promise<GitResult> {
  const command = invocation.args.find((arg) => !arg.startsWith("-") && !arg.includes("=")) ?? "";
  return new Promise((resolve, reject) => {
    const child = execFile(
      "git",
      invocation.args,
      {
        cwd: invocation.cwd,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: invocation.timeoutMs ?? 120_000,
        env: {
          ...process.env,
          GIT_TERMINAL_PROMPT: "0",
          GIT_LITERAL_PATHSPECS: "1",
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          LC_ALL: "C",
          ...invocation.env,
        },
      },
      (error, stdout, stderr) => {
        const exitCode = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        if (exitCode !== null && (exitCode === 0 || invocation.okExitCodes?.includes(exitCode))) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        const retryable = NETWORK.has(command) ? !REFUSED.test(stderr) : LOCKED.test(stderr);
        reject(new GitCommandError(command, exitCode, stderr || String(error?.message), retryable));
      },
    );
    // git may exit before reading its input (e.g. a failing command): that is its answer, not ours.
    child.stdin?.on("error", () => undefined);
    if (invocation.input === undefined) child.stdin?.end();
    else child.stdin?.end(invocation.input);
  });
}
