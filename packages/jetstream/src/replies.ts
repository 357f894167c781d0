import { createInbox, errors } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";

/** No reply came: the request was unanswered, or the connection closed first (retryable). */
export class NoReplyError extends Error {
  override readonly name = "NoReplyError";
  readonly retryable = true;
}

/** The server refused the publish: this user may not publish there (not retryable). */
export class PermissionDeniedError extends Error {
  override readonly name = "PermissionDeniedError";
  readonly retryable = false;
}

interface PendingReply {
  readonly subject: string;
  readonly resolve: (reply: Msg) => void;
  readonly reject: (error: Error) => void;
  readonly expiresAt: number;
}

const SWEEP_EVERY_MS = 250;

/**
 * Pipelined requests on one connection: every request carries a reply subject under one inbox
 * subscribed once, and its reply settles its promise there; one sweeper times them all out.
 * nats.js's requests each take an inbox route, a timer and (with async traces) two Error objects
 * built up front for their stacks; at fleet scale, publishing and confirming acks that way cost
 * more than the bus itself.
 */
export class Replies {
  readonly #connection: NatsConnection;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #pending = new Map<string, PendingReply>();
  #next = 0;

  constructor(connection: NatsConnection, inbox: string, timeoutMs: number) {
    this.#connection = connection;
    this.#prefix = `${createInbox(inbox)}.`;
    this.#timeoutMs = timeoutMs;
    connection.subscribe(`${this.#prefix}*`, {
      callback: (error, message) => {
        if (error === null) this.#settle(message);
      },
    });
    const sweeper = setInterval(() => {
      this.#expire(Date.now());
    }, SWEEP_EVERY_MS);
    sweeper.unref();
    // A publish the user may not make is dropped by the server, which says so out of band: fail
    // the requests waiting on it at once, naming the permission, instead of timing them out.
    void (async () => {
      for await (const status of connection.status()) {
        if (status.type !== "error") continue;
        const { error } = status;
        if (error instanceof errors.PermissionViolationError && error.operation === "publish") {
          this.#refuse(error.subject);
        }
      }
    })();
    void connection.closed().then(() => {
      clearInterval(sweeper);
      this.#failAll("the NATS connection closed before the reply came");
    });
  }

  /** Publishes `payload` to `subject` and resolves with the first reply, or rejects at timeout. */
  request(subject: string, payload: string, headers?: MsgHdrs): Promise<Msg> {
    const token = (this.#next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.#pending.set(token, {
        subject,
        resolve,
        reject,
        expiresAt: Date.now() + this.#timeoutMs,
      });
      try {
        this.#connection.publish(subject, payload, {
          reply: this.#prefix + token,
          ...(headers === undefined ? {} : { headers }),
        });
      } catch (error) {
        this.#pending.delete(token);
        reject(error instanceof Error ? error : new NoReplyError(String(error)));
      }
    });
  }

  #settle(message: Msg): void {
    const token = message.subject.slice(this.#prefix.length);
    const pending = this.#pending.get(token);
    if (pending === undefined) return; // answered after its timeout: the caller already gave up
    this.#pending.delete(token);
    pending.resolve(message);
  }

  #refuse(subject: string): void {
    for (const [token, pending] of this.#pending) {
      if (pending.subject !== subject) continue;
      this.#pending.delete(token);
      pending.reject(new PermissionDeniedError(`permission denied: publish to ${subject}`));
    }
  }

  #expire(now: number): void {
    for (const [token, pending] of this.#pending) {
      // One timeout for all: insertion order is expiry order.
      if (pending.expiresAt > now) break;
      this.#pending.delete(token);
      pending.reject(new NoReplyError(`no reply within ${this.#timeoutMs} ms`));
    }
  }

  #failAll(reason: string): void {
    for (const pending of this.#pending.values()) pending.reject(new NoReplyError(reason));
    this.#pending.clear();
  }
}

/** A NATS status reply (no data, a status code in the headers), e.g. 503 no responders. */
export function statusOf(reply: Msg): { code: number; description: string } | undefined {
  if (reply.data.length > 0 || reply.headers === undefined) return undefined;
  const { code, description } = reply.headers;
  return code === 0 ? undefined : { code, description };
}

const repliesByConnection = new WeakMap<NatsConnection, Replies>();

/** How long a pipelined request waits for its reply (nats.js's own default). */
const REPLY_TIMEOUT_MS = 5_000;

/** The connection's pipelined requests, created on first use under the inbox `inboxOf` names. */
export function repliesOf(connection: NatsConnection, inboxOf: () => string): Replies {
  let replies = repliesByConnection.get(connection);
  if (replies === undefined) {
    replies = new Replies(connection, inboxOf(), REPLY_TIMEOUT_MS);
    repliesByConnection.set(connection, replies);
  }
  return replies;
}
