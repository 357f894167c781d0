import { headers as natsHeaders } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import { envelopeSchema, eventSubject, qualifiedName, streamOfEventType } from "@safedeploy/schema";
import type { Envelope, EventType } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { TerminalError } from "./errors.js";
import { formatTraceparent, traceOf } from "./trace.js";

/** Header names SafeDeploy sets on every message besides `Nats-Msg-Id` and `traceparent`. */
export const HEADERS = {
  type: "Sd-Type",
  correlationId: "Sd-Correlation-Id",
  causationId: "Sd-Causation-Id",
  deadLetterReason: "Sd-Dlq-Reason",
  originalMsgId: "Sd-Original-Msg-Id",
} as const;

export interface PublishResult {
  readonly stream: string;
  readonly seq: number;
  /** True when the server already had a message with this id: nothing new was stored. */
  readonly duplicate: boolean;
}

function envelopeHeaders(
  envelope: Pick<Envelope, "id" | "type" | "correlationId" | "causationId">,
): MsgHdrs {
  const h = natsHeaders();
  h.set("traceparent", formatTraceparent(traceOf(envelope.correlationId, envelope.id)));
  h.set(HEADERS.type, envelope.type);
  h.set(HEADERS.correlationId, envelope.correlationId);
  if (envelope.causationId !== null) h.set(HEADERS.causationId, envelope.causationId);
  return h;
}

/**
 * Validates and publishes an event to its stream with `Nats-Msg-Id` = envelope id, so publishing
 * the same cause twice stores it once. Resolves only once the stream has stored it.
 */
export async function publishEvent<T extends EventType>(
  bus: Bus,
  envelope: Envelope<T>,
): Promise<PublishResult> {
  const checked = envelopeSchema(envelope.type).safeParse(envelope);
  if (!checked.success) {
    throw new TerminalError(
      `refusing to publish an invalid ${envelope.type}: ${checked.error.issues
        .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
        .join("; ")}`,
    );
  }
  const stream = streamOfEventType(envelope.type);
  if (stream === undefined) throw new TerminalError(`no stream stores ${envelope.type}`);
  const ack = await bus.js.publish(
    eventSubject(bus.ns, envelope.type, envelope.service),
    JSON.stringify(envelope),
    {
      msgID: envelope.id,
      headers: envelopeHeaders(envelope),
      expect: { streamName: qualifiedName(bus.ns, stream) },
    },
  );
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
}
