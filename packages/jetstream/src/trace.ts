import { createHash, randomBytes } from "node:crypto";

/** W3C trace context carried in NATS headers (https://www.w3.org/TR/trace-context/). */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

function hex(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/**
 * The trace of a message: its trace id follows the correlation id (so a whole causal chain is one
 * trace) and its span id follows the message id (so a redelivered message keeps its span).
 */
export function traceOf(correlationId: string, messageId: string): TraceContext {
  const traceId = /^[0-9a-f]{32}$/.test(correlationId) ? correlationId : hex(correlationId, 32);
  return { traceId, spanId: hex(messageId, 16) };
}

export function formatTraceparent(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.spanId}-01`;
}

export function parseTraceparent(header: string | undefined): TraceContext | undefined {
  const match = header === undefined ? null : TRACEPARENT.exec(header.trim());
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { traceId: match[1], spanId: match[2] };
}

/** A fresh 32-hex correlation id for a chain that starts here (e.g. a poll or a user command). */
export function newCorrelationId(): string {
  return randomBytes(16).toString("hex");
}
