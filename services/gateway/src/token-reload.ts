import { stat } from "node:fs/promises";
import { loadTokens } from "./tokens.js";
import type { TokenStore } from "./tokens.js";

/** How often the tokens file is checked for changes when not configured. */
export const DEFAULT_TOKENS_RELOAD_MS = 2_000;

/** A token store that follows its file; `close` stops following. */
export interface ReloadingTokenStore extends TokenStore {
  /** Checks the file now and reloads it when it changed (what the interval does). */
  check(): Promise<void>;
  close(): void;
}

interface Logger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What tells one version of the file from the next without reading it. */
async function signatureOf(path: string): Promise<string> {
  // The operator names this file (SAFEDEPLOY_TOKENS); following it is the point.
  // eslint-disable-next-line security/detect-non-literal-fs-filename
  const info = await stat(path);
  return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/**
 * The tokens of the file at `path`, reloaded when the file changes (checked every `intervalMs`),
 * so a revoked token is refused within seconds, without a restart. A change that leaves the file
 * unreadable or invalid keeps the tokens in force and logs an error naming the problem; the next
 * valid version is taken up. The first load must succeed (a bad file stops the start).
 */
export async function reloadingTokens(
  path: string,
  options: { readonly intervalMs?: number; readonly log?: Logger } = {},
): Promise<ReloadingTokenStore> {
  let signature = await signatureOf(path).catch(() => "");
  let current = await loadTokens(path);
  let checking: Promise<void> | null = null;

  const reload = async () => {
    let seen: string;
    try {
      seen = await signatureOf(path);
    } catch (error) {
      seen = `unreadable:${(error as NodeJS.ErrnoException).code ?? "?"}`;
    }
    if (seen === signature) return;
    signature = seen;
    try {
      current = await loadTokens(path);
      options.log?.info({ file: path }, "tokens file changed: tokens reloaded");
    } catch (error) {
      options.log?.error(
        { file: path, err: error },
        "tokens file changed but cannot be used; the tokens loaded before stay in force",
      );
    }
  };
  const check = () => {
    checking ??= reload().finally(() => {
      checking = null;
    });
    return checking;
  };
  const timer = setInterval(() => {
    void check();
  }, options.intervalMs ?? DEFAULT_TOKENS_RELOAD_MS);
  timer.unref();
  return {
    authenticate: (token) => current.authenticate(token),
    check,
    close: () => {
      clearInterval(timer);
    },
  };
}
