import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { connectBus } from "@safedeploy/jetstream";
import type { Bus, Logger } from "@safedeploy/jetstream";
import { AnyEnvelope, qualifiedName } from "@safedeploy/schema";
import type { Envelope, Namespace, StreamName } from "@safedeploy/schema";
import { dockerAvailable } from "./docker.js";

/** A namespace no other test file shares: its own subject root, stream and bucket prefix. */
export function testNamespace(): Namespace {
  const id = randomBytes(4).toString("hex");
  return { root: `t${id}`, prefix: `T${id.toUpperCase()}_` };
}

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: hostname, port: Number(port || 4222) }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

let containerUrl: Promise<string> | undefined;

/**
 * The NATS server for tests: `NATS_URL` when set, else the machine's server on 127.0.0.1:4222,
 * else a container when a Docker engine is reachable.
 */
export async function testNatsUrl(): Promise<string> {
  const configured = process.env.NATS_URL;
  if (configured !== undefined && configured !== "") return configured;
  const local = "nats://127.0.0.1:4222";
  if (await reachable(local)) return local;
  if (await dockerAvailable()) {
    containerUrl ??= (async () => {
      const { GenericContainer, Wait } = await import("testcontainers");
      const container = await new GenericContainer("nats:2.12-alpine")
        .withCommand(["-js"])
        .withExposedPorts(4222)
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start();
      return `nats://${container.getHost()}:${container.getMappedPort(4222)}`;
    })();
    return containerUrl;
  }
  throw new Error(
    "no NATS server for tests: set NATS_URL, start nats-server -js on 127.0.0.1:4222 (bash .ci/run does), or run a Docker engine",
  );
}

/** A bus in a fresh namespace; `cleanup` deletes every stream and bucket it created. */
export interface TestBus {
  readonly bus: Bus;
  readonly url: string;
  cleanup(): Promise<void>;
}

export async function createTestBus(
  options: { url?: string; ns?: Namespace; name?: string; log?: Logger } = {},
): Promise<TestBus> {
  const url = options.url ?? (await testNatsUrl());
  const ns = options.ns ?? testNamespace();
  const bus = await connectBus({
    servers: [url],
    name: options.name ?? `test-${ns.prefix}`,
    ns,
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  return {
    bus,
    url,
    cleanup: async () => {
      await deleteNamespace(bus, ns);
      await bus.close();
    },
  };
}

/** Deletes every stream (including KV buckets) whose name carries the namespace's prefix. */
export async function deleteNamespace(bus: Bus, ns: Namespace): Promise<void> {
  if (ns.prefix === "") throw new Error("refusing to delete the production namespace");
  const names: string[] = [];
  for await (const name of bus.jsm.streams.names()) {
    if (name.startsWith(ns.prefix) || name.startsWith(`KV_${ns.prefix}`)) names.push(name);
  }
  for (const name of names) await bus.jsm.streams.delete(name);
}

/** The environment a service needs to run against a test bus's server and namespace. */
export function testServiceEnv(
  harness: TestBus,
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    NATS_URL: harness.url,
    SAFEDEPLOY_SUBJECT_ROOT: harness.bus.ns.root,
    SAFEDEPLOY_STREAM_PREFIX: harness.bus.ns.prefix,
    LOG_LEVEL: "silent",
    ...overrides,
  };
}

/** Every envelope stored in one of the namespace's streams, in order (for assertions). */
export async function readStream(bus: Bus, stream: StreamName): Promise<Envelope[]> {
  const name = qualifiedName(bus.ns, stream);
  const info = await bus.jsm.streams.info(name);
  const found: Envelope[] = [];
  if (info.state.messages === 0) return found;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const message = await bus.jsm.streams.getMessage(name, { seq });
    if (message !== null) found.push(AnyEnvelope.parse(message.json()));
  }
  return found;
}
