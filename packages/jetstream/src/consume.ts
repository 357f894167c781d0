import { headers as natsHeaders } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import {
  AnyEnvelope,
  deadLetterSubject,
  envelopeSchema,
  parseDuration,
  qualifiedName,
  serviceOfSubject,
  subjectMismatch,
} from "@safedeploy/schema";
import type { ConsumerDeclaration, DeadLetter, Envelope, EventType } from "@safedeploy/schema";
import type { z } from "zod";
import type { Bus } from "./connection.js";
import { describeError, isRetryable } from "./errors.js";
import { recreateWhenLost } from "./lifeline.js";
import { attachConsumer } from "./provision.js";
import { HEADERS, busReplies } from "./publish.js";
import { statusOf } from "./replies.js";
import { parseTraceparent } from "./trace.js";
import type { TraceContext } from "./trace.js";

/** What a handler may know about the delivery besides the envelope. */
export interface MessageContext {
  readonly subject: string;
  readonly stream: string;
  readonly streamSequence: number;
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, string[]>>;
  /** The producer's trace context, to continue the trace. */
  readonly trace: TraceContext | undefined;
}

export type Handler<T extends EventType> = (
  envelope: Envelope<T>,
  context: MessageContext,
) => Promise<void>;

export interface ConsumeOptions<T extends EventType> {
  readonly consumer: ConsumerDeclaration;
  /** Accepted event types; anything else on the filter is dead-lettered. Default: every type. */
  readonly types?: readonly T[];
  readonly handler: Handler<T>;
  /** nak delay before delivery n+1, by n; the last entry repeats. */
  readonly backoffMs?: readonly number[];
  /** Messages pulled per request. */
  readonly batch?: number;
  /**
   * Handlers in flight at once (default 1). Above 1, messages are handled out of order, which
   * DESIGN.md asks every decision to tolerate; it hides the publish and ack round trips.
   */
  readonly concurrency?: number;
  /** Called once a delivery is settled, e.g. to count outcomes in /metrics. */
  readonly onSettled?: (settled: Settled) => void;
  /**
   * Wait for the server to confirm each ack (default true): only then is the delivery reported
   * `acked`, and a restart never hands it over again. False for hot paths whose handlers are
   * idempotent by message id and compare-and-set: the ack is sent and the slot freed at once
   * (`ack-sent`); a lost ack is one redelivery, which the handler absorbs. Half the ack traffic.
   */
  readonly confirmAcks?: boolean;
}

/**
 * How one delivery ended. `ack-unconfirmed`: handled, but the server did not confirm the ack;
 * `ack-sent`: handled and acked without waiting for a confirmation (`confirmAcks: false`).
 */
export interface Settled {
  readonly outcome: "acked" | "ack-sent" | "ack-unconfirmed" | "retry" | "dead-lettered";
  readonly subject: string;
  readonly streamSequence: number;
  readonly deliveryCount: number;
  /** The envelope id, when the payload carried one. */
  readonly messageId: string | undefined;
}

/** Counts since the subscription started; in = handled + deadLettered once settled. */
export interface ConsumerStats {
  handled: number;
  deadLettered: number;
  retried: number;
  recreated: number;
}

export interface Subscription {
  readonly stats: Readonly<ConsumerStats>;
  /** Stops pulling, lets the message in hand finish and be acked, then resolves. */
  stop(): Promise<void>;
}

export const DEFAULT_BACKOFF_MS = [1_000, 5_000, 15_000, 30_000, 60_000] as const;

type Settle =
  | { readonly kind: "ack" }
  | { readonly kind: "nak"; readonly reason: string }
  | { readonly kind: "dead-letter"; readonly dlq: DeadLetter["kind"]; readonly reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

function headerRecord(h: MsgHdrs | undefined): Record<string, string[]> {
  const record: Record<string, string[]> = {};
  if (h === undefined) return record;
  for (const key of h.keys()) record[key] = h.values(key);
  return record;
}

function encodePayload(data: Uint8Array): { payload: string; payloadEncoding: "utf8" | "base64" } {
  try {
    return { payload: utf8.decode(data), payloadEncoding: "utf8" };
  } catch {
    return { payload: Buffer.from(data).toString("base64"), payloadEncoding: "base64" };
  }
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

/** The `$JS.ACK…` subject a message is acked on (nats.js keeps it off the JsMsg interface). */
function ackSubject(m: JsMsg): string | undefined {
  const reply: unknown = Reflect.get(m, "reply");
  return typeof reply === "string" && reply.startsWith("$JS.ACK.") ? reply : undefined;
}

function schemaFor<T extends EventType>(types: readonly T[] | undefined): z.ZodType<Envelope<T>> {
  if (types?.length === 1 && types[0] !== undefined) return envelopeSchema(types[0]);
  return AnyEnvelope as z.ZodType<Envelope<T>>;
}

/**
 * Runs a handler over a durable pull consumer, shared by every replica of a service. The handler
 * sees only validated envelopes. A message is acked only after the handler resolves; a thrown
 * retryable error naks with a growing delay; after `maxDeliver` deliveries, on a terminal error, or
 * for an invalid payload, the message goes to DEADLETTER with the reason and its original headers
 * and is then terminated. If the consumer disappears (deleted, server restarted without state) it
 * is recreated and consumption goes on.
 */
export function consumeEvents<T extends EventType>(
  bus: Bus,
  options: ConsumeOptions<T>,
): Subscription {
  const declaration = options.consumer;
  const stream = qualifiedName(bus.ns, declaration.stream);
  const durable = qualifiedName(bus.ns, declaration.durable);
  const backoff = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const ackWaitMs = parseDuration(declaration.ackWait) ?? 30_000;
  const schema = schemaFor(options.types);
  const log = bus.log;
  const stats: ConsumerStats = { handled: 0, deadLettered: 0, retried: 0, recreated: 0 };
  // An object, not a boolean: closures set it, and the loops must re-read it.
  const state = { stopping: false };
  const isStopping = (): boolean => state.stopping;
  let messages: ConsumerMessages | undefined;
  // Envelope ids of messages in hand, for onSettled (parsed once, in decide).
  const idsInHand = new WeakMap<JsMsg, string>();
  // Handlers running now and since when: one ticker tells the server each slow one is alive.
  const working = new Map<JsMsg, number>();
  const keepAliveMs = Math.max(1_000, Math.floor(ackWaitMs / 3));
  const keepAlive = setInterval(() => {
    const before = Date.now() - keepAliveMs;
    for (const [m, since] of working) if (since <= before) m.working();
  }, keepAliveMs);
  keepAlive.unref();

  async function decide(m: JsMsg): Promise<Settle> {
    let json: unknown;
    try {
      json = JSON.parse(m.string());
    } catch (error) {
      return {
        kind: "dead-letter",
        dlq: "invalid",
        reason: `payload is not JSON: ${describeError(error)}`,
      };
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      return {
        kind: "dead-letter",
        dlq: "invalid",
        reason: `invalid message: ${formatIssues(parsed.error)}`,
      };
    }
    idsInHand.set(m, parsed.data.id);
    const misplaced = subjectMismatch(bus.ns, m.subject, parsed.data);
    if (misplaced !== null) return { kind: "dead-letter", dlq: "invalid", reason: misplaced };
    const deliveries = m.info.deliveryCount;
    if (deliveries > declaration.maxDeliver) {
      return {
        kind: "dead-letter",
        dlq: "exhausted",
        reason: `delivered ${deliveries} times without an ack (handler crashed or timed out)`,
      };
    }
    let headerMap: Record<string, string[]> | undefined;
    const context: MessageContext = {
      subject: m.subject,
      stream: m.info.stream,
      streamSequence: m.seq,
      deliveryCount: deliveries,
      // Few handlers read them: copied out only when one does.
      get headers() {
        return (headerMap ??= headerRecord(m.headers));
      },
      trace: parseTraceparent(m.headers?.get("traceparent")),
    };
    // Tell the server we are alive while a slow handler runs, so it does not redeliver.
    working.set(m, Date.now());
    try {
      await options.handler(parsed.data, context);
      return { kind: "ack" };
    } catch (error) {
      const reason = describeError(error);
      if (!isRetryable(error)) return { kind: "dead-letter", dlq: "terminal", reason };
      if (deliveries >= declaration.maxDeliver) {
        return {
          kind: "dead-letter",
          dlq: "exhausted",
          reason: `failed ${deliveries} deliveries; last error: ${reason}`,
        };
      }
      return { kind: "nak", reason };
    } finally {
      working.delete(m);
    }
  }

  /**
   * Acks and waits for the server to confirm it (what `ackAck` does), through the bus's pipelined
   * requests: one shared inbox and sweeper instead of a request, a timer and traces per message.
   */
  async function confirmAck(m: JsMsg): Promise<boolean> {
    const subject = ackSubject(m);
    if (subject === undefined) return m.ackAck();
    const reply = await busReplies(bus).request(subject, "+ACK");
    return statusOf(reply) === undefined;
  }

  async function deadLetter(m: JsMsg, kind: DeadLetter["kind"], reason: string): Promise<void> {
    const original = headerRecord(m.headers);
    const letter: DeadLetter = {
      reason,
      kind,
      stream: declaration.stream,
      consumer: durable,
      subject: m.subject,
      streamSequence: m.seq,
      deliveryCount: m.info.deliveryCount,
      at: new Date().toISOString(),
      headers: original,
      ...encodePayload(m.data),
    };
    const h = natsHeaders();
    for (const [key, values] of Object.entries(original)) {
      // The original id would make the dead letter a duplicate of nothing: keep it under another name.
      const name = key === "Nats-Msg-Id" ? HEADERS.originalMsgId : key;
      for (const value of values) h.append(name, value);
    }
    h.set(HEADERS.deadLetterReason, reason.slice(0, 1_000).replace(/[\r\n]+/g, " "));
    await bus.js.publish(
      deadLetterSubject(bus.ns, declaration.stream, serviceOfSubject(m.subject)),
      JSON.stringify(letter),
      {
        msgID: `dlq:${stream}:${m.seq}`,
        headers: h,
        expect: { streamName: qualifiedName(bus.ns, "DEADLETTER") },
      },
    );
  }

  function retryDelay(deliveries: number): number {
    return backoff[Math.min(deliveries, backoff.length) - 1] ?? 1_000;
  }

  function report(m: JsMsg, outcome: Settled["outcome"]): void {
    if (options.onSettled === undefined) return;
    options.onSettled({
      outcome,
      subject: m.subject,
      streamSequence: m.seq,
      deliveryCount: m.info.deliveryCount,
      messageId: idsInHand.get(m),
    });
  }

  async function handle(m: JsMsg): Promise<void> {
    if (state.stopping) {
      m.nak(); // let another replica take it at once
      return;
    }
    const settle = await decide(m);
    const where = { subject: m.subject, seq: m.seq, deliveries: m.info.deliveryCount };
    switch (settle.kind) {
      case "ack": {
        if (options.confirmAcks === false) {
          m.ack();
          stats.handled += 1;
          report(m, "ack-sent");
          return;
        }
        const confirmed = await confirmAck(m).catch((error: unknown) => {
          log.warn(
            { ...where, error: describeError(error) },
            "ack not confirmed; may be redelivered",
          );
          return false;
        });
        stats.handled += 1;
        report(m, confirmed ? "acked" : "ack-unconfirmed");
        return;
      }
      case "nak":
        m.nak(retryDelay(m.info.deliveryCount));
        stats.retried += 1;
        report(m, "retry");
        log.warn({ ...where, error: settle.reason }, "handler failed; will retry");
        return;
      case "dead-letter":
        try {
          await deadLetter(m, settle.dlq, settle.reason);
        } catch (error) {
          // Not terminated until the dead letter is stored: nothing is lost.
          m.nak(retryDelay(m.info.deliveryCount));
          log.error({ ...where, error: describeError(error) }, "dead-lettering failed; will retry");
          return;
        }
        // No reason on the TERM: nats-server before 2.10.4 ignores a `+TERM reason` ack and redelivers
        // (the reason is in the dead letter).
        m.term();
        stats.deadLettered += 1;
        report(m, "dead-lettered");
        log.warn({ ...where, kind: settle.dlq, reason: settle.reason }, "message dead-lettered");
        return;
    }
  }

  async function run(): Promise<void> {
    while (!state.stopping) {
      try {
        await attachConsumer(bus, declaration);
        const consumer = await bus.js.consumers.get(stream, durable);
        messages = await consumer.consume({ max_messages: options.batch ?? 100 });
        void recreateWhenLost(bus, declaration, messages, {
          stopping: () => state.stopping,
          recreated: () => (stats.recreated += 1),
        });
        const limit = Math.max(1, options.concurrency ?? 1);
        const inFlight = new Set<Promise<void>>();
        for await (const m of messages) {
          const task = handle(m).finally(() => inFlight.delete(task));
          inFlight.add(task);
          if (inFlight.size >= limit) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      } catch (error) {
        // Re-read through a call: narrowing from the loop condition would hide stop() having run.
        if (isStopping()) break;
        log.warn(
          { stream, durable, error: describeError(error) },
          "consumer loop failed; restarting",
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  const running = run();
  return {
    stats,
    stop: async () => {
      state.stopping = true;
      await messages?.close();
      await running;
      clearInterval(keepAlive);
    },
  };
}
