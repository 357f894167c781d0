/**
 * @packageDocumentation
 * The only door to NATS: connect, provision the topology, publish typed events with dedup ids,
 * consume them with ack/nak/dead-letter, request/reply commands, and compare-and-set KV.
 */
export { connectBus, serverCredentials } from "./connection.js";
export type { Bus, ConnectOptions } from "./connection.js";
export { consumeEvents, DEFAULT_BACKOFF_MS } from "./consume.js";
export type {
  ConsumeOptions,
  ConsumerStats,
  Handler,
  MessageContext,
  Settled,
  Subscription,
} from "./consume.js";
export {
  CommandFailedError,
  KvConflictError,
  TerminalError,
  describeError,
  isRetryable,
} from "./errors.js";
export { openKv } from "./kv.js";
export type { KvOptions, Revisioned, TypedKv } from "./kv.js";
export { mutate, oneAtATime } from "./mutate.js";
export type { Decision, MutateOptions, Outbox } from "./mutate.js";
export { silentLogger } from "./logger.js";
export type { Logger } from "./logger.js";
export { auditAnchors } from "./anchors.js";
export {
  acknowledgedThrough,
  consumerConfig,
  consumerFilter,
  attachConsumer,
  ConsumerMissingError,
  ensureConsumer,
  ensureStream,
  provision,
  streamConfig,
} from "./provision.js";
export type { ProvisionReport } from "./provision.js";
export { readHistory } from "./history.js";
export type { HistoryEntry, HistoryQuery } from "./history.js";
export { HEADERS, PublishFailedError, publishEvent } from "./publish.js";
export type { PublishOptions, PublishResult } from "./publish.js";
export { requestCommand, serveCommand } from "./rpc.js";
export type { CommandHandler, CommandServer } from "./rpc.js";
export { formatTraceparent, newCorrelationId, parseTraceparent, traceOf } from "./trace.js";
export type { TraceContext } from "./trace.js";
export { consumeRaw } from "./consume-raw.js";
export type {
  ConsumeRawOptions,
  RawBatchHandler,
  RawBatchOutcome,
  RawConsumerStats,
  RawMessage,
  RawSubscription,
} from "./consume-raw.js";
