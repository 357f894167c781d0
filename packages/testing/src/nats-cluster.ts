import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable, freePort, startProcess, waitUntil } from "./process.js";
import type { ManagedProcess } from "./process.js";

/** One node of a {@link PrivateNatsCluster}. */
export interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** Monitoring port (`/healthz`, `/jsz`, `/routez`). */
  readonly httpPort: number;
  readonly storeDir: string;
  readonly logFile: string;
  /** Whether its process is running. */
  running(): boolean;
  /** SIGKILL: no graceful shutdown, nothing flushed (a crash). */
  kill(): Promise<void>;
  /** Starts it again with the same ports, configuration and store. */
  start(): Promise<void>;
}

/** Three (or more) nats-server processes with routes on loopback, JetStream on each. */
export interface PrivateNatsCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated (as `NATS_URL` takes them). */
  readonly url: string;
  /**
   * Waits until every running node has all routes, knows the JetStream meta leader and reports
   * itself healthy (`/healthz?js-server-only=true`).
   */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes the stores. */
  dispose(): Promise<void>;
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

async function monitor<T>(httpPort: number, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, {
      signal: AbortSignal.timeout(1_000),
    });
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

function nodeConfig(
  name: string,
  ports: { client: number; route: number; http: number },
  routes: readonly number[],
  storeDir: string,
  include: string | undefined,
): string {
  return [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.http}`,
    `jetstream { store_dir: "${storeDir}" }`,
    "cluster {",
    "  name: sd-test",
    `  listen: 127.0.0.1:${ports.route}`,
    `  routes: [${routes.map((port) => `nats-route://127.0.0.1:${port}`).join(", ")}]`,
    "}",
    ...(include === undefined ? [] : [`include "${include}"`]),
    "",
  ].join("\n");
}

/**
 * Starts a NATS cluster of `size` (default 3) nodes of the machine's `nats-server` on free
 * loopback ports, routes between all of them, JetStream in temporary stores; `include` adds a
 * configuration file to each (e.g. the generated permissions). Resolves once it is {@link ready}.
 */
export async function startNatsCluster(
  options: { size?: number; include?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<PrivateNatsCluster> {
  const binary = process.env.NATS_SERVER_BIN ?? findExecutable("nats-server");
  if (binary === undefined) {
    throw new Error("nats-server not found on PATH or in /usr/sbin: apt-get install nats-server");
  }
  const size = options.size ?? 3;
  const root = mkdtempSync(join(tmpdir(), "sd-nats-cluster-"));
  const ports: { client: number; route: number; http: number }[] = [];
  // freePort releases each port at once: take them all before any server binds one.
  const taken = new Set<number>();
  const fresh = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  for (let i = 0; i < size; i++) {
    ports.push({ client: await fresh(), route: await fresh(), http: await fresh() });
  }
  const routes = ports.map((p) => p.route);
  const nodes = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(root, name);
    const configFile = join(root, `${name}.conf`);
    writeFileSync(configFile, nodeConfig(name, p, routes, storeDir, options.include));
    return clusterNode(binary, name, p, storeDir, configFile, join(root, `${name}.log`), options);
  });
  const cluster: PrivateNatsCluster = {
    nodes,
    url: nodes.map((node) => node.url).join(","),
    async ready(timeoutMs = 30_000) {
      const up = nodes.filter((node) => node.running());
      await waitUntil(
        async () => {
          for (const node of up) {
            const jsz = await monitor<Jsz>(node.httpPort, "/jsz");
            const routez = await monitor<{ num_routes?: number }>(node.httpPort, "/routez");
            // The server and the JetStream meta layer: every stream being current as well can
            // take long under constant load, and a stream catching up still serves from its
            // leader.
            const health = await monitor<{ status?: string }>(
              node.httpPort,
              "/healthz?js-server-only=true",
            );
            if (jsz?.meta_cluster?.leader === undefined || jsz.meta_cluster.leader === "") {
              return false;
            }
            if ((routez?.num_routes ?? 0) < up.length - 1 || health?.status !== "ok") return false;
          }
          return true;
        },
        timeoutMs,
        () => `the NATS cluster did not form:\n${up.map((n) => n.logFile).join("\n")}`,
      );
    },
    async dispose() {
      await Promise.all(nodes.map((node) => node.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
  await Promise.all(nodes.map((node) => node.start()));
  await cluster.ready();
  return cluster;
}

function clusterNode(
  binary: string,
  name: string,
  ports: { client: number; route: number; http: number },
  storeDir: string,
  configFile: string,
  logFile: string,
  options: { env?: NodeJS.ProcessEnv },
): ClusterNode {
  let current: ManagedProcess | undefined;
  const alive = () => current?.child.exitCode === null;
  return {
    name,
    url: `nats://127.0.0.1:${ports.client}`,
    port: ports.client,
    httpPort: ports.http,
    storeDir,
    logFile,
    running: () => alive() && current?.child.signalCode === null,
    async kill() {
      // SIGKILL alone: SIGTERM first would let it shut down cleanly, which is not a crash.
      const server = current;
      current = undefined;
      if (server?.child.exitCode !== null || server.child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => {
        server.child.once("exit", () => {
          resolve();
        });
      });
      server.child.kill("SIGKILL");
      await exited;
    },
    async start() {
      const started = startProcess(binary, ["-c", configFile], logFile, {
        ...(options.env === undefined ? {} : { env: options.env }),
      });
      current = started;
      await waitUntil(
        async () => {
          if (started.child.exitCode !== null) throw new Error("exited");
          return (await monitor<object>(ports.http, "/varz")) !== undefined;
        },
        15_000,
        () => `nats-server ${name} did not start:\n${started.logTail()}`,
      );
    },
  };
}
