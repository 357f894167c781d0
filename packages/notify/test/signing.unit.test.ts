import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  deliveryId,
  slackSignature,
  standardWebhookHeaders,
  standardWebhookSignature,
  verifySlackRequest,
  webhookKey,
} from "@safedeploy/notify";

// Slack's worked example (api.slack.com/authentication/verifying-requests-from-slack).
const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_TS = "1531420618";
const SLACK_BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

// The Standard Webhooks specification's test vector.
const SW = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

describe("Slack request signatures", () => {
  it("computes Slack's documented example signature", () => {
    expect(slackSignature(SLACK_SECRET, SLACK_TS, SLACK_BODY)).toBe(SLACK_SIG);
  });

  it("verifies the documented example at its own time and within five minutes of it", () => {
    const check = (nowSeconds: number) =>
      verifySlackRequest({
        signingSecret: SLACK_SECRET,
        timestamp: SLACK_TS,
        signature: SLACK_SIG,
        rawBody: SLACK_BODY,
        nowSeconds,
      });
    expect(check(Number(SLACK_TS))).toEqual({ ok: true });
    expect(check(Number(SLACK_TS) + 300)).toEqual({ ok: true });
    expect(check(Number(SLACK_TS) + 301)).toEqual({ ok: false, reason: "stale" });
    expect(check(Number(SLACK_TS) - 301)).toEqual({ ok: false, reason: "stale" });
  });

  it("refuses a changed body, a wrong secret, a missing or malformed header", () => {
    const base = {
      signingSecret: SLACK_SECRET,
      timestamp: SLACK_TS,
      signature: SLACK_SIG,
      rawBody: SLACK_BODY,
      nowSeconds: Number(SLACK_TS),
    };
    expect(verifySlackRequest({ ...base, rawBody: `${SLACK_BODY}&x=1` }).ok).toBe(false);
    expect(verifySlackRequest({ ...base, signingSecret: "other" })).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect(verifySlackRequest({ ...base, signature: undefined })).toEqual({
      ok: false,
      reason: "missing",
    });
    expect(verifySlackRequest({ ...base, signature: "v1=abc" })).toEqual({
      ok: false,
      reason: "malformed",
    });
    expect(verifySlackRequest({ ...base, timestamp: "12a" })).toEqual({
      ok: false,
      reason: "malformed",
    });
  });

  it("accepts exactly the signature node:crypto computes independently, for any body", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (body, secret) => {
        const ts = "1700000000";
        const independent = `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
        const input = {
          signingSecret: secret,
          timestamp: ts,
          rawBody: body,
          nowSeconds: 1700000000,
        };
        expect(verifySlackRequest({ ...input, signature: independent })).toEqual({ ok: true });
        const flipped = independent.endsWith("0")
          ? `${independent.slice(0, -1)}1`
          : `${independent.slice(0, -1)}0`;
        expect(verifySlackRequest({ ...input, signature: flipped }).ok).toBe(false);
      }),
    );
  });
});

describe("Standard Webhooks signatures", () => {
  it("computes the specification's test vector", () => {
    expect(standardWebhookSignature(SW.secret, SW.id, SW.timestamp, SW.body)).toBe(SW.signature);
  });

  it("sends the id, the timestamp and the signature as the three headers", () => {
    expect(standardWebhookHeaders(SW.secret, SW.id, SW.timestamp, SW.body)).toEqual({
      "webhook-id": SW.id,
      "webhook-timestamp": String(SW.timestamp),
      "webhook-signature": SW.signature,
    });
  });

  it("refuses a secret that is not base64, without quoting it", () => {
    expect(() => webhookKey("whsec_not base64!")).toThrow(/whsec_ followed by base64/);
    expect(() => webhookKey("")).toThrow();
    try {
      webhookKey("whsec_sec ret");
    } catch (error) {
      expect(String(error)).not.toContain("sec ret");
    }
  });
});

describe("delivery ids", () => {
  it("are the same for the same event and notifier, different across either", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (notifier, a, b) => {
        expect(deliveryId(notifier, a)).toBe(deliveryId(notifier, a));
        expect(deliveryId(notifier, a)).toMatch(/^msg_[0-9a-f]{32}$/);
        if (a !== b) expect(deliveryId(notifier, a)).not.toBe(deliveryId(notifier, b));
      }),
    );
    expect(deliveryId("ops", "e1")).not.toBe(deliveryId("slack", "e1"));
  });
});
