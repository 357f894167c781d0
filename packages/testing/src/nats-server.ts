import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable, freePort, startProcess, waitUntil } from "./process.js";
import type { ManagedProcess } from "./process.js";

/** A private nats-server with JetStream that a test can stop and restart on the same port and store. */
export interface PrivateNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the server gracefully; its JetStream store stays on disk. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it and removes its store. */
  dispose(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

/**
 * Starts the machine's `nats-server` binary (Debian package `nats-server`, or `NATS_SERVER_BIN`)
 * with JetStream, a temporary store and a free port.
 */
export async function startNatsServer(
  options: { configFile?: string } = {},
): Promise<PrivateNatsServer> {
  const binary = process.env.NATS_SERVER_BIN ?? findExecutable("nats-server");
  if (binary === undefined) {
    throw new Error(
      "nats-server not found on PATH or in /usr/sbin: apt-get install nats-server, or set NATS_SERVER_BIN",
    );
  }
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), "sd-nats-"));
  const storeDir = join(root, "store");
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir];
  if (options.configFile !== undefined) args.push("-c", options.configFile);
  let current: ManagedProcess | undefined;

  const start = async (): Promise<void> => {
    const started = startProcess(binary, args, join(root, "nats-server.log"));
    current = started;
    await waitUntil(
      async () => {
        if (started.child.exitCode !== null) throw new Error("exited");
        return listening(port);
      },
      10_000,
      () => `nats-server on port ${port} did not start:\n${started.logTail()}`,
    );
  };
  const stop = async (): Promise<void> => {
    // A graceful stop writes the consumers' ack state; a SIGKILL may lose the last acks (a
    // loaded machine can take seconds to shut down), so it gets a long grace.
    await current?.stop(30_000);
    current = undefined;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    dispose: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
