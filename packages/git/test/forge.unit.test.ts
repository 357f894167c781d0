import { describe, expect, it } from "vitest";
import { classifyForgeError, redactSecrets } from "../src/index.js";

const failure = (
  status: number | undefined,
  headers: Record<string, string> = {},
  message = "x",
) => ({
  status,
  message,
  response: status === undefined ? undefined : { status, headers },
});

describe("classifyForgeError", () => {
  it("retries what can pass: no response, 5xx, 429 and 403 rate limits, with the wait GitHub asked for", () => {
    expect(classifyForgeError(failure(undefined), "GET /x")).toMatchObject({ retryable: true });
    expect(classifyForgeError(failure(503), "GET /x")).toMatchObject({
      retryable: true,
      status: 503,
    });
    expect(classifyForgeError(failure(429, { "retry-after": "7" }), "GET /x")).toMatchObject({
      retryable: true,
      retryAfterMs: 7_000,
    });
    const now = 1_700_000_000_000;
    expect(
      classifyForgeError(
        failure(403, {
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": String(now / 1_000 + 90),
        }),
        "GET /x",
        now,
      ),
    ).toMatchObject({ retryable: true, retryAfterMs: 90_000 });
    expect(
      classifyForgeError(failure(403, {}, "You have exceeded a secondary rate limit"), "GET /x"),
    ).toMatchObject({ retryable: true });
  });

  it("gives up on other 4xx", () => {
    for (const status of [400, 401, 403, 404, 422]) {
      expect(classifyForgeError(failure(status), "POST /y")).toMatchObject({
        retryable: false,
        status,
      });
    }
  });

  it("keeps secrets out of messages", () => {
    const error = classifyForgeError(
      failure(
        401,
        {},
        "Bad credentials for https://x-access-token:ghs_abcdefghijklmnop@github.com/a/b",
      ),
      "GET /x",
    );
    expect(error.message).not.toContain("ghs_abcdefghijklmnop");
    expect(redactSecrets("Authorization: Bearer eyJhbGciOi.abc.def")).toBe(
      "Authorization: Bearer ***",
    );
    expect(redactSecrets("token ghp_0123456789abcdef")).toBe("token ***");
  });
});
