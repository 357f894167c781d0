import { DeliverPolicy } from "@nats-io/jetstream";
import { AnyEnvelope, STREAM_DOMAINS, qualifiedName } from "@safedeploy/schema";
import type { Envelope, StreamName } from "@safedeploy/schema";
import type { Bus } from "./connection.js";

/** One stored message of a stream's history. */
export interface HistoryEntry {
  readonly stream: StreamName;
  readonly seq: number;
  readonly subject: string;
  /** When the server stored it. */
  readonly storedAt: string;
  readonly envelope: Envelope;
}

export interface HistoryQuery {
  readonly stream: StreamName;
  /** Only messages about this service (the subject's last token). */
  readonly service: string;
  /** Stored at or after this time (ISO 8601). */
  readonly since: string;
  /** Stored before or at this time; default: everything stored when the read began. */
  readonly until?: string;
  /** Called every `progressEvery` messages, for long reads. */
  readonly onProgress?: (read: number) => void;
}

/**
 * Reads a service's messages of one stream by time, in stream order, through an ordered
 * consumer (nothing durable is left behind). Messages that are not envelopes are skipped.
 */
export async function readHistory(bus: Bus, query: HistoryQuery): Promise<HistoryEntry[]> {
  const name = qualifiedName(bus.ns, query.stream);
  const info = await bus.jsm.streams.info(name);
  const entries: HistoryEntry[] = [];
  if (info.state.messages === 0) return entries;
  const lastSeq = info.state.last_seq;
  const until = query.until === undefined ? Number.POSITIVE_INFINITY : Date.parse(query.until);
  const consumer = await bus.js.consumers.get(name, {
    filter_subjects: `${bus.ns.root}.${STREAM_DOMAINS[query.stream]}.*.${query.service}`,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(query.since).toISOString(),
  });
  // How many messages match from the start time on: stop once they are read.
  const matching = (await consumer.info()).num_pending;
  let read = 0;
  while (read < matching) {
    const batch = await consumer.fetch({
      // Large pulls: a round trip per 500 left the fold idle a fifth of the time.
      max_messages: Math.min(5_000, matching - read),
      expires: 5_000,
    });
    let received = 0;
    let done = false;
    for await (const message of batch) {
      received += 1;
      read += 1;
      if (read % 1_000 === 0) query.onProgress?.(read);
      const storedMs = Math.floor(message.info.timestampNanos / 1_000_000);
      if (storedMs > until || message.seq > lastSeq) {
        done = true;
        break;
      }
      const parsed = AnyEnvelope.safeParse(message.json());
      if (parsed.success) {
        entries.push({
          stream: query.stream,
          seq: message.seq,
          subject: message.subject,
          storedAt: new Date(storedMs).toISOString(),
          envelope: parsed.data,
        });
      }
      if (read >= matching || message.seq >= lastSeq) done = true;
    }
    if (done || received === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  return entries;
}
