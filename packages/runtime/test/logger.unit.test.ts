import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, withCorrelation } from "@safedeploy/runtime";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe("createLogger", () => {
  it("writes JSON with the service, level, ISO time and correlation id", async () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: "budget", destination });
    withCorrelation(log, { correlationId: "c-1", causationId: "m-0" }).info(
      { slo: "availability" },
      "evaluated",
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toMatchObject({
      service: "budget",
      level: "info",
      correlationId: "c-1",
      causationId: "m-0",
      slo: "availability",
      msg: "evaluated",
    });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it("never writes a secret", async () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: "git-actuator", destination });
    log.info(
      { token: "ghp_abc", request: { headers: { authorization: "Bearer xyz" } }, githubToken: "t" },
      "call",
    );
    await new Promise((resolve) => setImmediate(resolve));
    const text = JSON.stringify(lines);
    expect(text).not.toContain("ghp_abc");
    expect(text).not.toContain("Bearer xyz");
    expect(lines[0]?.token).toBe("***");
  });

  it("honours the level", async () => {
    const { lines, destination } = capture();
    createLogger({ service: "x", level: "warn", destination }).info({}, "quiet");
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([]);
  });
});
