import { describe, expect, it } from "vitest";
import { createLogger, withCorrelation } from "@safedeploy/runtime";
import { captureLog } from "./fixtures/log-capture.js";

describe("createLogger", () => {
  it("writes JSON with the service, level label, ISO time and correlation ids", () => {
    const { lines, destination } = captureLog();
    const log = createLogger({ service: "budget", destination });
    withCorrelation(log.child({ component: "consumer" }), {
      correlationId: "c-1",
      causationId: "m-0",
    }).info({ slo: "availability" }, "evaluated");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      service: "budget",
      component: "consumer",
      level: "info",
      correlationId: "c-1",
      causationId: "m-0",
      slo: "availability",
      msg: "evaluated",
    });
    expect(new Date(String(lines[0]?.time)).toISOString()).toBe(lines[0]?.time);
  });

  it("leaves the causation id out when there is none", () => {
    const { lines, destination } = captureLog();
    const log = createLogger({ service: "incident", destination });
    withCorrelation(log, { correlationId: "c-2", causationId: null }).info({}, "opened");
    expect(lines[0]).toMatchObject({ correlationId: "c-2" });
    expect(lines[0]).not.toHaveProperty("causationId");
  });

  it("masks secret fields by name, at the top and nested", () => {
    const { lines, text, destination } = captureLog();
    const log = createLogger({ service: "git-actuator", destination });
    log.info(
      {
        token: "tok-1",
        GITHUB_TOKEN: "tok-2",
        forge: { githubToken: "tok-3", auth: { password: "tok-4" } },
        request: { headers: { authorization: "Bearer tok-5", "x-api-key": "tok-6" } },
        call: { request: { headers: { Authorization: "tok-7", cookie: "tok-8" } } },
      },
      "call",
    );
    for (let i = 1; i <= 8; i++) expect(text()).not.toContain(`tok-${i}`);
    expect(lines[0]).toMatchObject({
      token: "***",
      request: { headers: { authorization: "***" } },
    });
  });

  it("masks credentials inside text: messages, URLs and errors", () => {
    const { lines, text, destination } = captureLog();
    const log = createLogger({ service: "audit", destination });
    log.error(
      {
        databaseUrl: "postgres://app:hunter2@db:5432/sd",
        err: new Error("push to https://bot:ghp_abcdefghij@github.com/a/b.git refused"),
      },
      "connecting to nats://s3cret@nats:4222 failed",
    );
    expect(text()).not.toMatch(/hunter2|ghp_abcdefghij|s3cret/);
    expect(lines[0]).toMatchObject({
      databaseUrl: "postgres://app:***@db:5432/sd",
      msg: "connecting to nats://***@nats:4222 failed",
      err: { type: "Error", message: "push to https://bot:***@github.com/a/b.git refused" },
    });
  });

  it("serialises an Error given as `error`", () => {
    const { lines, destination } = captureLog();
    createLogger({ service: "x", destination }).warn({ error: new TypeError("bad") }, "failed");
    expect(lines[0]).toMatchObject({ error: { type: "TypeError", message: "bad" } });
    expect(String((lines[0]?.error as { stack?: string }).stack)).toContain("TypeError: bad");
  });

  it("honours the level", () => {
    const { lines, destination } = captureLog();
    const log = createLogger({ service: "x", level: "warn", destination });
    log.info({}, "quiet");
    log.warn({}, "loud");
    expect(lines.map((line) => line.msg)).toEqual(["loud"]);
  });
});
