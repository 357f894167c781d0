import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** A signing key that cannot be used; the message never quotes the key. */
export class SigningKeyError extends Error {
  override readonly name = "SigningKeyError";
}

/**
 * The key bytes of a Standard Webhooks secret: `whsec_` + base64 (the prefix is optional).
 * Throws {@link SigningKeyError} for an empty or non-base64 key.
 */
export function webhookKey(secret: string): Buffer {
  const encoded = secret.trim().replace(/^whsec_/, "");
  if (encoded === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new SigningKeyError("the webhook secret must be whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

/**
 * The `webhook-signature` of Standard Webhooks 1.0: `v1,` + base64 HMAC-SHA256 over
 * `{id}.{timestamp}.{body}` with the decoded key.
 */
export function standardWebhookSignature(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): string {
  const mac = createHmac("sha256", webhookKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest("base64");
  return `v1,${mac}`;
}

/** The three Standard Webhooks headers of one attempt (the id is the same on every attempt). */
export function standardWebhookHeaders(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": standardWebhookSignature(secret, id, timestamp, body),
  };
}

/**
 * The delivery id (`webhook-id`) of one event to one notifier: derived from both, so every
 * redelivery of the event, by any replica, carries the same id.
 */
export function deliveryId(notifier: string, eventId: string): string {
  const digest = createHash("sha256").update(`${notifier}\n${eventId}`).digest("hex");
  return `msg_${digest.slice(0, 32)}`;
}

/** Slack's `X-Slack-Signature`: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${rawBody}`).digest("hex")}`;
}

/** How old (or how far ahead) a Slack request may be: 5 minutes, as Slack documents. */
export const SLACK_TOLERANCE_SECONDS = 300;

export type SlackVerification =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "missing" | "malformed" | "stale" | "mismatch" };

/**
 * Checks a Slack request against its signing secret: the timestamp within 5 minutes of `now`, the
 * signature `v0=` + 64 hex digits, equal (compared in constant time) to the one computed over the
 * raw body. `nowSeconds` is passed in: the caller owns the clock.
 */
export function verifySlackRequest(input: {
  readonly signingSecret: string;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
  readonly rawBody: string;
  readonly nowSeconds: number;
}): SlackVerification {
  const { timestamp, signature } = input;
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: "missing" };
  if (!/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-f]{64}$/.test(signature)) {
    return { ok: false, reason: "malformed" };
  }
  if (Math.abs(input.nowSeconds - Number(timestamp)) > SLACK_TOLERANCE_SECONDS) {
    return { ok: false, reason: "stale" };
  }
  const expected = Buffer.from(slackSignature(input.signingSecret, timestamp, input.rawBody));
  const presented = Buffer.from(signature);
  // Both are `v0=` + 64 hex digits here, so the lengths agree and the compare is constant-time.
  return timingSafeEqual(expected, presented) ? { ok: true } : { ok: false, reason: "mismatch" };
}
