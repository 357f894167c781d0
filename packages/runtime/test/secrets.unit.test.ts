import { describe, expect, it } from "vitest";
import { redactCredentials, redactUrl } from "@safedeploy/runtime";

describe("redactCredentials", () => {
  it.each([
    [
      "connect postgres://app:hunter2@db:5432/sd failed",
      "connect postgres://app:***@db:5432/sd failed",
    ],
    [
      "remote https://x-access-token:ghs_abc123@github.com/a/b.git",
      "remote https://x-access-token:***@github.com/a/b.git",
    ],
    ["servers nats://tok3n@n1:4222,nats://u:p@n2", "servers nats://***@n1:4222,nats://u:***@n2"],
    ["host=db user=app password=hunter2 dbname=sd", "host=db user=app password=*** dbname=sd"],
    ['{"header":"Authorization: Bearer eyJhbGciOi.xyz"}', '{"header":"Authorization: Bearer ***"}'],
    ["token ghp_16C7e42F292c6912E7710c838347Ae178B4a leaked", "token ghp_*** leaked"],
    ["pat github_pat_11ABCDEFG0_abcdef", "pat github_pat_***"],
  ])("masks %j", (text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });

  it.each([
    "GET http://127.0.0.1:9090/api/v1/query?query=up 200",
    "user app connected to db:5432",
    "git@github.com:acme/env.git",
    "no answer within 2000 ms",
  ])("leaves %j alone", (text) => {
    expect(redactCredentials(text)).toBe(text);
  });

  it("stays fast on long lines without credentials", () => {
    const line = `${"a.".repeat(50_000)}://${"b".repeat(50_000)}`;
    const started = performance.now();
    redactCredentials(line);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe("redactUrl", () => {
  it("masks passwords, NATS tokens and password parameters", () => {
    expect(redactUrl("postgresql://app:p%40ss@db/sd")).toBe("postgresql://app:***@db/sd");
    expect(redactUrl("nats://t0ken@n1:4222")).toBe("nats://***@n1:4222");
    expect(redactUrl("postgres://db/sd?password=x")).toBe("postgres://db/sd?password=***");
  });

  it("keeps URLs without credentials as written", () => {
    expect(redactUrl("http://127.0.0.1:9090")).toBe("http://127.0.0.1:9090");
    expect(redactUrl("postgres://app@db/sd")).toBe("postgres://app@db/sd");
    expect(redactUrl("./catalog")).toBe("./catalog");
  });
});
