import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DEFAULT_NAMESPACE, inboxPrefix, isInboxToken } from "@safedeploy/schema";
import type { Namespace } from "@safedeploy/schema";
import { silentLogger } from "./logger.js";
import type { Logger } from "./logger.js";

/** A connection to NATS with JetStream, and the namespace this deployment's names live in. */
export interface Bus {
  readonly connection: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly ns: Namespace;
  readonly log: Logger;
  /**
   * The NATS user it connected as, if any. A service connected as a user only binds to what the
   * provisioner created (`safedeploy provision`): its permissions let it create nothing.
   */
  readonly user: string | undefined;
  /** Whether the connection is up right now (for readiness). */
  isConnected(): boolean;
  /** Drains subscriptions and pending publishes, then closes. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** NATS server URLs, e.g. `["nats://127.0.0.1:4222"]`. */
  readonly servers: readonly string[];
  /** Client name shown by the server, e.g. the service name and replica. */
  readonly name: string;
  readonly ns?: Namespace;
  readonly log?: Logger;
  readonly user?: string;
  readonly pass?: string;
  /** How long to wait for the first connection before failing (ms). */
  readonly timeoutMs?: number;
}

/**
 * Takes the credentials out of server URLs (`nats://user:pass@host:4222`, or `nats://token@host`):
 * nats.js does not read them from the URL, so they become connection options instead. The first
 * URL that carries any wins; the servers are returned without them.
 */
export function serverCredentials(servers: readonly string[]): {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
} {
  let found: { user?: string; pass?: string; token?: string } = {};
  const bare = servers.map((server) => {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      return server; // host:port without a scheme carries no credentials
    }
    if (url.username === "") return server;
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    if (Object.keys(found).length === 0) {
      found = pass === "" ? { token: user } : { user, pass };
    }
    url.username = "";
    url.password = "";
    return url.toString().replace(/\/$/, "");
  });
  return { servers: bare, ...found };
}

/**
 * Connects and keeps reconnecting forever: a NATS outage delays work, it never ends the process.
 * Credentials come from `user`/`pass`, or from the server URLs; a user's inboxes are
 * `_INBOX_<user>` (see `inboxPrefix`).
 */
export async function connectBus(options: ConnectOptions): Promise<Bus> {
  const log = options.log ?? silentLogger;
  const fromUrls = serverCredentials(options.servers);
  const user = options.user ?? fromUrls.user;
  const pass = options.pass ?? fromUrls.pass;
  const connection = await connect({
    servers: fromUrls.servers,
    // Replies come to the user's own inboxes, the only ones its NATS permissions let it read.
    ...(user !== undefined && isInboxToken(user) ? { inboxPrefix: inboxPrefix(user) } : {}),
    name: options.name,
    // Async traces build two Error objects per request for their stacks: at fleet scale that
    // was the client's largest cost, for stacks nobody reads.
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: options.timeoutMs ?? 5_000,
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(fromUrls.token === undefined || user !== undefined ? {} : { token: fromUrls.token }),
  });
  coalesceWrites(connection);
  const link = { up: true };
  void watchStatus(connection, log, link);
  const jsm = await jetstreamManager(connection);
  return {
    connection,
    js: jetstream(connection),
    jsm,
    ns: options.ns ?? DEFAULT_NAMESPACE,
    log,
    user,
    isConnected: () => link.up && !connection.isClosed(),
    close: async () => {
      if (connection.isClosed()) return;
      await connection.drain();
    },
  };
}

interface Flushing {
  flushPending(): void;
}

function isFlushing(value: unknown): value is Flushing {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Partial<Flushing>).flushPending === "function"
  );
}

/**
 * nats.js writes what was queued at the end of each microtask checkpoint: a consumer settling
 * hundreds of messages, each with its own publish and ack, makes a socket write (a syscall, and
 * loopback delivery inside it) for nearly every one, the largest cost of every service at fleet
 * scale. Deferring the flush to the next macrotask turns them into one write per event-loop turn,
 * in the same order. It patches the client's one flush hook; a client without it is left alone.
 */
function coalesceWrites(connection: NatsConnection): void {
  const protocol: unknown = Reflect.get(connection, "protocol");
  if (!isFlushing(protocol)) return;
  const flushNow = protocol.flushPending.bind(protocol);
  let scheduled = false;
  protocol.flushPending = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushNow();
    });
  };
}

async function watchStatus(
  connection: NatsConnection,
  log: Logger,
  link: { up: boolean },
): Promise<void> {
  for await (const status of connection.status()) {
    switch (status.type) {
      case "disconnect":
        link.up = false;
        log.warn({ server: status.server }, "NATS disconnected");
        break;
      case "reconnect":
        link.up = true;
        log.info({ server: status.server }, "NATS reconnected");
        break;
      case "error":
        log.error({ error: String(status.error) }, "NATS connection error");
        break;
      default:
        break;
    }
  }
}
