import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import {
  envelopeSchema,
  eventSubject,
  inboxPrefix,
  isInboxToken,
  qualifiedName,
  streamOfEventType,
} from "@safedeploy/schema";
import type { Envelope, EventType } from "@safedeploy/schema";
import type { Bus } from "./connection.js";
import { TerminalError } from "./errors.js";
import { repliesOf, statusOf } from "./replies.js";
import type { Replies } from "./replies.js";
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

/** JetStream did not store a message: refused, unanswered or unreachable (retryable). */
export class PublishFailedError extends Error {
  override readonly name = "PublishFailedError";
  readonly retryable = true;
}

/** The bus's pipelined requests, replied to in the user's own inboxes (all it may read). */
export function busReplies(bus: Bus): Replies {
  return repliesOf(bus.connection, () =>
    bus.user !== undefined && isInboxToken(bus.user) ? inboxPrefix(bus.user) : "_INBOX",
  );
}

interface AckBody {
  stream?: unknown;
  seq?: unknown;
  duplicate?: unknown;
  error?: { code?: unknown; description?: unknown };
}

function streamAck(reply: Msg): PublishResult {
  const status = statusOf(reply);
  if (status !== undefined) {
    throw new PublishFailedError(`no stream stored it (${status.code} ${status.description})`);
  }
  let body: AckBody;
  try {
    body = reply.json<AckBody>();
  } catch {
    throw new PublishFailedError("JetStream answered with something other than JSON");
  }
  if (body.error !== undefined) {
    const { code, description } = body.error;
    throw new PublishFailedError(`JetStream refused it (${String(code)}): ${String(description)}`);
  }
  if (typeof body.stream !== "string" || typeof body.seq !== "number") {
    throw new PublishFailedError("JetStream's ack names no stream and sequence");
  }
  return { stream: body.stream, seq: body.seq, duplicate: body.duplicate === true };
}

export interface PublishOptions {
  /**
   * `false` skips validating the envelope: only for envelopes the caller built itself, with the
   * typed constructors, from input it validated (a hot path's second parse of its own output).
   * Consumers validate every message on receipt whatever the producer did.
   */
  readonly validate?: boolean;
}

function validated<T extends EventType>(envelope: Envelope<T>): void {
  const checked = envelopeSchema(envelope.type).safeParse(envelope);
  if (!checked.success) {
    throw new TerminalError(
      `refusing to publish an invalid ${envelope.type}: ${checked.error.issues
        .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
        .join("; ")}`,
    );
  }
}

/**
 * Validates and publishes an event to its stream with `Nats-Msg-Id` = envelope id, so publishing
 * the same cause twice stores it once. Resolves only once the stream has stored it; many
 * publishes in flight share one reply subscription (pipelined acks).
 */
export async function publishEvent<T extends EventType>(
  bus: Bus,
  envelope: Envelope<T>,
  options: PublishOptions = {},
): Promise<PublishResult> {
  if (options.validate !== false) validated(envelope);
  const stream = streamOfEventType(envelope.type);
  if (stream === undefined) throw new TerminalError(`no stream stores ${envelope.type}`);
  const headers = envelopeHeaders(envelope);
  headers.set("Nats-Msg-Id", envelope.id);
  headers.set("Nats-Expected-Stream", qualifiedName(bus.ns, stream));
  const reply = await busReplies(bus)
    .request(
      eventSubject(bus.ns, envelope.type, envelope.service),
      JSON.stringify(envelope),
      headers,
    )
    .catch((error: unknown) => {
      throw new PublishFailedError(`JetStream did not acknowledge: ${String(error)}`);
    });
  return streamAck(reply);
}
