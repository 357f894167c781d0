import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthCheck } from "@safedeploy/schema";
import { probeHealth, runHealthChecks } from "@safedeploy/release";
import { freePort } from "@safedeploy/testing";

/* Real HTTP against a local server whose answers the tests choose by path. */
let server: Server;
let base: string;

beforeAll(async () => {
  const http = createServer((request, response) => {
    switch (request.url) {
      case "/healthz":
        response.writeHead(200, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            status: "ok",
            version: "v2",
            deps: [{ name: "db", up: true }],
            note: "ready",
          }),
        );
        return;
      case "/degraded":
        response
          .writeHead(200, { "Content-Type": "application/json" })
          .end(JSON.stringify({ status: "degraded", version: "v2" }));
        return;
      case "/down":
        response.writeHead(503).end("unavailable");
        return;
      case "/slow":
        setTimeout(() => response.writeHead(200).end("ready"), 300);
        return;
      case "/hang":
        return;
      default:
        response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  server = http;
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const check = (path: string, expect: Record<string, unknown> = {}, severity = "fatal") =>
  HealthCheck.parse({ http: `${base}${path}`, expect, severity });

describe("probeHealth", () => {
  it("returns the status, the whole body and the latency", async () => {
    const observation = await probeHealth(check("/healthz"), { fetch });
    expect(observation).toMatchObject({ status: 200 });
    if (!("status" in observation)) throw new Error("expected an answer");
    expect(JSON.parse(observation.body)).toMatchObject({ status: "ok" });
    expect(observation.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("a refused connection is an error observation, never a throw", async () => {
    const port = await freePort();
    const observation = await probeHealth(
      HealthCheck.parse({ http: `http://127.0.0.1:${port}/healthz` }),
      { fetch },
    );
    expect(observation).toMatchObject({ error: expect.stringContaining("ECONNREFUSED") as string });
  });

  it("a probe that takes longer than timeoutMs is timed out", async () => {
    const observation = await probeHealth(check("/hang"), { fetch, timeoutMs: 200 });
    expect(observation).toMatchObject({ error: "timed out" });
    expect(observation.latencyMs).toBeGreaterThanOrEqual(150);
  });
});

describe("runHealthChecks", () => {
  it("judges real answers: content, status, latency, and keeps the order", async () => {
    const results = await runHealthChecks(
      [
        check("/healthz", {
          json: { "$.status": "ok", "$.deps[0].up": true },
          bodyContains: "ready",
          maxLatency: "2s",
        }),
        check("/degraded", { json: { "$.status": "ok" } }, "warning"),
        check("/down", { status: 200 }),
        check("/slow", { bodyContains: "ready", maxLatency: "100ms" }),
      ],
      { fetch },
    );
    expect(results.map((r) => [r.outcome, r.failures.map((f) => f.expectation)])).toEqual([
      ["ok", []],
      ["warning", ["json $.status"]],
      ["fatal", ["status"]],
      ["fatal", ["maxLatency"]],
    ]);
    expect(results[1]?.failures[0]).toMatchObject({ expected: "ok", got: "degraded" });
    expect(results[3]?.latencyMs).toBeGreaterThanOrEqual(250);
  });
});
