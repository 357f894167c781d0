import { accessSync, constants, readdirSync } from "node:fs";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";

/** Finds an executable on PATH, then in the sbin folders Debian installs servers into, then `extraDirs`. */
export function findExecutable(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  extraDirs: readonly string[] = [],
): string | undefined {
  const dirs = [
    ...(env.PATH ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/local/sbin",
    "/sbin",
    ...extraDirs,
  ];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `/usr/lib/postgresql/<version>/bin` folders, newest first. */
export function postgresBinDirs(): string[] {
  try {
    return readdirSync("/usr/lib/postgresql")
      .filter((version) => /^\d+$/.test(version))
      .sort((a, b) => Number(b) - Number(a))
      .map((version) => `/usr/lib/postgresql/${version}/bin`);
  } catch {
    return [];
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

/** Binds `port` (0: any) on 127.0.0.1 and releases it: the port, or undefined when taken. */
export function tryPort(port: number, host = "127.0.0.1"): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => {
      resolve(undefined);
    });
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : undefined;
      server.close(() => {
        resolve(bound);
      });
    });
  });
}

/** `preferred` when it is free, else a free port. */
export async function portOr(preferred: number): Promise<number> {
  const port = (await tryPort(preferred)) ?? (await tryPort(0));
  if (port === undefined) throw new Error("no free TCP port on 127.0.0.1");
  return port;
}

export const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms);
  });

/** Polls `probe` every `everyMs` until it returns true; throws `describe()` after `timeoutMs`. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(describe());
    await sleep(everyMs);
  }
}

/** A failure the user can fix: printed as is, with the exit code, no stack trace. */
export class StackError extends Error {
  override readonly name = "StackError";
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.exitCode = exitCode;
  }
}
