import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Msg } from "@nats-io/transport-node";
import { z } from "zod";
import type { Replies } from "./replies.js";
import { statusOf } from "./replies.js";

/**
 * The few JetStream API calls a KV bucket needs, sent through the connection's pipelined replies
 * (see {@link Replies}) instead of nats.js's per-request machinery: at fleet scale a policy or
 * incident replica makes tens of thousands of them per poll interval. Every read goes to the
 * stream leader (`STREAM.MSG.GET`, not `DIRECT.GET`, which a lagging follower may answer), so a
 * read is never older than the last acknowledged write. Every answer is checked with zod.
 */

/** A message as the stream stores it. */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly operation: "PUT" | "DEL" | "PURGE";
  readonly data: Uint8Array;
}

/** A JetStream API error reply. */
const ApiError = z.object({
  code: z.number(),
  err_code: z.number().optional(),
  description: z.string().optional(),
});

/** A JetStream API answer: `shape` on success, else an error. */
const apiReply = <T extends z.ZodRawShape>(shape: T) =>
  z.union([z.object({ error: ApiError }), z.object(shape)]);

const MsgGetReply = apiReply({
  message: z.object({
    subject: z.string(),
    seq: z.number().int().positive(),
    hdrs: z.string().optional(),
    data: z.string().optional(),
  }),
});
const StreamInfoReply = apiReply({
  state: z.object({
    first_seq: z.number().int().nonnegative(),
    last_seq: z.number().int().nonnegative(),
  }),
});
const PubAckReply = apiReply({ stream: z.string(), seq: z.number().int().positive() });

/** JetStream's "wrong last sequence": a compare-and-set lost. */
const WRONG_LAST_SEQUENCE = 10071;
/** JetStream's "no message found". */
const NO_MESSAGE_FOUND = 10037;

/** A JetStream API call failed; `code` is the API's error code (e.g. 404), `errCode` its kind. */
export class KvApiError extends Error {
  override readonly name = "KvApiError";
  readonly retryable = true;
  readonly code: number;
  readonly errCode: number | undefined;
  constructor(what: string, error: z.infer<typeof ApiError>) {
    super(`${what}: ${error.description ?? "error"} (${error.code})`);
    this.code = error.code;
    this.errCode = error.err_code;
  }
}

/** Whether a failed write lost its compare-and-set (another writer was first). */
export const isWrongLastSequence = (error: unknown): boolean =>
  error instanceof KvApiError && error.errCode === WRONG_LAST_SEQUENCE;

function parseReply<T>(schema: z.ZodType<T>, what: string, reply: Msg): T {
  const status = statusOf(reply);
  if (status !== undefined) {
    throw new KvApiError(what, { code: status.code, description: status.description });
  }
  const parsed = schema.safeParse(JSON.parse(reply.string()));
  if (!parsed.success) throw new Error(`${what}: unexpected answer: ${parsed.error.message}`);
  return parsed.data;
}

/** `KV-Operation` of a stored message's NATS headers block (absent: a put). */
function operationOf(headerBlock: string | undefined): StoredMessage["operation"] {
  if (headerBlock === undefined) return "PUT";
  const match = /^KV-Operation:\s*(\w+)\s*$/im.exec(Buffer.from(headerBlock, "base64").toString());
  const operation = match?.[1]?.toUpperCase();
  return operation === "DEL" || operation === "PURGE" ? operation : "PUT";
}

export interface KvApi {
  /**
   * The stream's first and last sequence now: every write acknowledged before the call is at or
   * below `last`; nothing below `first` is left.
   */
  sequences(): Promise<{ readonly first: number; readonly last: number }>;
  /** The latest message of `subject`, or null when it has none. */
  lastOf(subject: string): Promise<StoredMessage | null>;
  /** The first message at or after `seq` whose subject matches `filter`, or null when none. */
  nextFrom(seq: number, filter: string): Promise<StoredMessage | null>;
  /**
   * Stores `payload` (or a delete marker) on `subject` only if the subject's last message is at
   * `revision` (0: it has none); resolves the new sequence.
   */
  write(subject: string, payload: string, revision: number, operation?: "DEL"): Promise<number>;
}

export function kvApi(replies: Replies, stream: string): KvApi {
  const getMessage = async (query: object): Promise<StoredMessage | null> => {
    const what = `reading ${stream}`;
    const reply = await replies.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify(query));
    const body = parseReply(MsgGetReply, what, reply);
    if ("error" in body) {
      if (body.error.code === 404 || body.error.err_code === NO_MESSAGE_FOUND) return null;
      throw new KvApiError(what, body.error);
    }
    const { message } = body;
    return {
      seq: message.seq,
      subject: message.subject,
      operation: operationOf(message.hdrs),
      data: message.data === undefined ? new Uint8Array() : Buffer.from(message.data, "base64"),
    };
  };
  return {
    async sequences() {
      const what = `the state of ${stream}`;
      const body = parseReply(
        StreamInfoReply,
        what,
        await replies.request(`$JS.API.STREAM.INFO.${stream}`, ""),
      );
      if ("error" in body) throw new KvApiError(what, body.error);
      return { first: body.state.first_seq, last: body.state.last_seq };
    },
    lastOf: (subject) => getMessage({ last_by_subj: subject }),
    nextFrom: (seq, filter) => getMessage({ seq, next_by_subj: filter }),
    async write(subject, payload, revision, operation) {
      const headers = natsHeaders();
      headers.set("Nats-Expected-Last-Subject-Sequence", String(revision));
      headers.set("Nats-Expected-Stream", stream);
      if (operation !== undefined) headers.set("KV-Operation", operation);
      const what = `writing ${subject}`;
      const body = parseReply(PubAckReply, what, await replies.request(subject, payload, headers));
      if ("error" in body) throw new KvApiError(what, body.error);
      return body.seq;
    },
  };
}
