import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { parseDuration, qualifiedName } from "@safedeploy/schema";
import type { ConsumerDeclaration } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { DEFAULT_BACKOFF_MS } from "./consume.js";
import { describeError } from "./errors.js";
import { recreateWhenLost } from "./lifeline.js";
import { attachConsumer } from "./provision.js";

/** One stored message exactly as the stream holds it: nothing is decoded or validated. */
export interface RawMessage {
  /** The server's stream name (with the namespace prefix). */
  readonly stream: string;
  readonly streamSequence: number;
  readonly subject: string;
  readonly headers: Readonly<Record<string, string[]>>;
  readonly data: Uint8Array;
  /** When the server stored it, ISO 8601 with milliseconds. */
  readonly time: string;
  readonly deliveryCount: number;
}

/** Handles one batch; every message in it is acked once this resolves, nak'ed if it throws. */
export type RawBatchHandler = (batch: readonly RawMessage[]) => Promise<void>;

export interface ConsumeRawOptions {
  readonly consumer: ConsumerDeclaration;
  readonly handler: RawBatchHandler;
  /** Most messages per batch, default 500. */
  readonly maxBatch?: number;
  /** How long to wait for more messages after the first of a batch arrived, default 25 ms. */
  readonly lingerMs?: number;
  /** nak delay before delivery n+1, by n; the last entry repeats. */
  readonly backoffMs?: readonly number[];
  /** Called after each batch, e.g. to count in /metrics. */
  readonly onBatch?: (outcome: RawBatchOutcome) => void;
}

export interface RawBatchOutcome {
  readonly outcome: "acked" | "retry";
  readonly size: number;
  readonly error?: string;
}

export interface RawConsumerStats {
  batches: number;
  acked: number;
  retried: number;
  recreated: number;
}

export interface RawSubscription {
  readonly stats: Readonly<RawConsumerStats>;
  /** Stops pulling, lets the batch in hand finish and be acked, naks what is queued, then resolves. */
  stop(): Promise<void>;
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string[]> {
  const record: Record<string, string[]> = {};
  if (h === undefined) return record;
  for (const key of h.keys()) record[key] = h.values(key);
  return record;
}

function toRaw(m: JsMsg): RawMessage {
  return {
    stream: m.info.stream,
    streamSequence: m.seq,
    subject: m.subject,
    headers: headerRecord(m.headers),
    data: m.data,
    time: m.time.toISOString(),
    deliveryCount: m.info.deliveryCount,
  };
}

/**
 * Runs a batch handler over a durable pull consumer, handing it the stored messages untouched
 * (stream, sequence, subject, headers, bytes, server time). Unlike {@link consumeEvents} nothing is
 * parsed or validated, so it reads any stream, DEADLETTER included, and never dead-letters. A
 * batch is what arrived within `lingerMs` of its first message, at most `maxBatch`. Every message
 * of a batch is acked only after the handler resolved; if it throws, the whole batch is nak'ed with
 * a growing delay and redelivered (so the handler must be idempotent). A deleted consumer is
 * recreated and consumption goes on.
 */
export function consumeRaw(bus: Bus, options: ConsumeRawOptions): RawSubscription {
  const declaration = options.consumer;
  const stream = qualifiedName(bus.ns, declaration.stream);
  const durable = qualifiedName(bus.ns, declaration.durable);
  const maxBatch = Math.max(1, options.maxBatch ?? 500);
  const lingerMs = Math.max(0, options.lingerMs ?? 25);
  const backoff = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const ackWaitMs = parseDuration(declaration.ackWait) ?? 30_000;
  const log = bus.log;
  const stats: RawConsumerStats = { batches: 0, acked: 0, retried: 0, recreated: 0 };
  const state = { stopping: false };
  const isStopping = (): boolean => state.stopping;
  let messages: ConsumerMessages | undefined;

  const queue: JsMsg[] = [];
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const arrival = (timeoutMs?: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      if (timeoutMs !== undefined) setTimeout(notify, timeoutMs);
    });

  function retryDelay(deliveries: number): number {
    return backoff[Math.min(Math.max(deliveries, 1), backoff.length) - 1] ?? 1_000;
  }

  async function settle(batch: readonly JsMsg[]): Promise<void> {
    const keepAlive = setInterval(
      () => {
        for (const m of batch) m.working();
      },
      Math.max(1_000, Math.floor(ackWaitMs / 3)),
    );
    try {
      await options.handler(batch.map(toRaw));
    } catch (error) {
      const reason = describeError(error);
      for (const m of batch) m.nak(retryDelay(m.info.deliveryCount));
      stats.retried += batch.length;
      options.onBatch?.({ outcome: "retry", size: batch.length, error: reason });
      log.warn({ stream, durable, size: batch.length, error: reason }, "batch failed; will retry");
      return;
    } finally {
      clearInterval(keepAlive);
    }
    // The effect is durable: ack without waiting for each confirmation (a lost ack only means a
    // redelivery, which the handler absorbs).
    for (const m of batch) m.ack();
    stats.batches += 1;
    stats.acked += batch.length;
    options.onBatch?.({ outcome: "acked", size: batch.length });
  }

  async function drainQueue(): Promise<void> {
    while (!state.stopping) {
      if (queue.length === 0) await arrival();
      if (isStopping()) break;
      if (queue.length === 0) continue;
      // Give the rest of a burst a moment to arrive, then take what is there.
      if (queue.length < maxBatch && lingerMs > 0) await arrival(lingerMs);
      const batch = queue.splice(0, maxBatch);
      if (batch.length > 0) await settle(batch);
    }
    for (const m of queue.splice(0)) m.nak(); // let another replica take them at once
  }

  async function pull(): Promise<void> {
    while (!state.stopping) {
      try {
        await attachConsumer(bus, declaration);
        const consumer = await bus.js.consumers.get(stream, durable);
        messages = await consumer.consume({ max_messages: maxBatch * 2 });
        void recreateWhenLost(bus, declaration, messages, {
          stopping: () => state.stopping,
          recreated: () => (stats.recreated += 1),
        });
        for await (const m of messages) {
          if (isStopping()) {
            m.nak(); // let another replica take it at once
            continue;
          }
          queue.push(m);
          if (queue.length === 1 || queue.length >= maxBatch) notify();
        }
      } catch (error) {
        if (isStopping()) break;
        log.warn(
          { stream, durable, error: describeError(error) },
          "consumer loop failed; restarting",
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  const pulling = pull();
  const draining = drainQueue();
  return {
    stats,
    stop: async () => {
      state.stopping = true;
      notify();
      await messages?.close();
      await Promise.all([pulling, draining]);
      for (const m of queue.splice(0)) m.nak();
    },
  };
}
