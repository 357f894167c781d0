import { describe, expect, it } from "vitest";
import { ApiError } from "../src/errors.js";
import { keysetOf } from "../src/pagination.js";
import { redactHookHeaders } from "../src/redact.js";
import { eventName } from "../src/routes/events.js";
import { gatewayOptionsFromEnv } from "../src/service.js";
import { withStatementTimeout } from "../src/statement-timeout.js";
import { verifyCache } from "../src/verify-cache.js";

const cursor = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");

describe("event names", () => {
  it("sends a stored type only when it is a plain name, never a newline or a field", () => {
    expect(eventName("budget.evaluated")).toBe("budget.evaluated");
    expect(eventName("x\ndata: forged")).toBe("message");
    expect(eventName("x\r\nid: 1")).toBe("message");
    expect(eventName("a:b")).toBe("message");
    expect(eventName(null)).toBe("message");
  });
});

describe("hook headers", () => {
  it("replaces every HTTP hook header value with [redacted], keeping the names", () => {
    const spec = {
      deployment: {
        strategy: "canary",
        canary: {
          promoteHook: { http: { url: "https://x", headers: { authorization: "Bearer s3cret" } } },
          rollbackHook: { manifest: { path: "p", patch: { headers: { keep: "me" } } } },
        },
      },
    };
    const shown = redactHookHeaders(spec);
    expect(shown.deployment.canary.promoteHook.http.headers).toEqual({
      authorization: "[redacted]",
    });
    expect(shown.deployment.canary.rollbackHook.manifest.patch.headers).toEqual({ keep: "me" });
    expect(JSON.stringify(shown)).not.toContain("s3cret");
    expect(spec.deployment.canary.promoteHook.http.headers.authorization).toBe("Bearer s3cret");
  });
});

describe("cursors at the edge", () => {
  const refused = (key: unknown, first: "instant" | "sequence" | "name", parts: number) => {
    try {
      keysetOf({ limit: 10, cursor: cursor(key) }, { parts, first });
      return null;
    } catch (error) {
      return error instanceof ApiError ? error.details : error;
    }
  };
  it("refuses what Date.parse accepts but PostgreSQL does not, and sequences past bigint", () => {
    expect(refused(["+275760-09-13T00:00:00.000Z", "INC-1"], "instant", 2)).toEqual([
      { in: "querystring", path: "cursor", message: "not a cursor this API issued" },
    ]);
    expect(refused(["Tue, 01 Jan 2026 00:00:00 GMT", "INC-1"], "instant", 2)).not.toBeNull();
    expect(refused(["2026-01-01T00:00:00.000Z", "INC-\u0000"], "instant", 2)).not.toBeNull();
    expect(refused(["99999999999999999999"], "sequence", 1)).not.toBeNull();
    expect(refused(["che\u0000ckout"], "name", 1)).not.toBeNull();
    expect(refused(["2026-01-01T00:00:00.000Z", "INC-1"], "instant", 2)).toBeNull();
    expect(refused(["00000000000000000042"], "sequence", 1)).toBeNull();
  });
});

describe("configuration", () => {
  it("reads the statement timeout and the streams per token, naming a bad variable", () => {
    expect(
      gatewayOptionsFromEnv({ GATEWAY_STATEMENT_TIMEOUT: "2s", GATEWAY_SSE_MAX_PER_TOKEN: "8" }),
    ).toEqual({ statementTimeoutMs: 2_000, events: { streamsPerToken: 8 } });
    expect(() => gatewayOptionsFromEnv({ GATEWAY_SSE_MAX_PER_TOKEN: "0" })).toThrow(
      /GATEWAY_SSE_MAX_PER_TOKEN/,
    );
    expect(() => gatewayOptionsFromEnv({ GATEWAY_STATEMENT_TIMEOUT: "soon" })).toThrow(
      /GATEWAY_STATEMENT_TIMEOUT/,
    );
    expect(withStatementTimeout("postgres://h/db?sslmode=disable", 300)).toBe(
      "postgres://h/db?sslmode=disable&statement_timeout=300",
    );
    expect(withStatementTimeout("postgres://h/db?statement_timeout=9", 300)).toBe(
      "postgres://h/db?statement_timeout=9",
    );
  });
});

describe("verify cache", () => {
  it("checks once per head, shares a running check, and checks again for a new head", async () => {
    let head = "a";
    let checks = 0;
    let now = 0;
    const cache = verifyCache({
      head: () => Promise.resolve(head),
      verify: async (input: string) => {
        checks += 1;
        const seen = head;
        await new Promise((resolve) => setTimeout(resolve, 10));
        return `${input}@${seen}`;
      },
      now: () => new Date(now),
      maxAgeMs: 1_000,
    });
    const [one, two] = await Promise.all([cache.get("x"), cache.get("x")]);
    expect(checks).toBe(1);
    expect(one.report).toBe("x@a");
    expect(two.cached).toBe(false);
    expect((await cache.get("x")).cached).toBe(true);
    head = "b";
    expect((await cache.get("x")).report).toBe("x@b");
    expect(checks).toBe(2);
    now = 5_000;
    expect((await cache.get("x")).cached).toBe(false);
    expect(checks).toBe(3);
    // A head that moves while a check runs joins it: one rehash at a time, however busy the log.
    head = "c";
    const running = cache.get("x");
    await new Promise((resolve) => setTimeout(resolve, 1));
    head = "d";
    expect((await Promise.all([running, cache.get("x")])).map((r) => r.report)).toEqual([
      "x@c",
      "x@c",
    ]);
    expect(checks).toBe(4);
  });
});
