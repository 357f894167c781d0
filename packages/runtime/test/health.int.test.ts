import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startHealthServer, startService } from "@safedeploy/runtime";

describe("health server", () => {
  it("answers healthz, readyz with every check, metrics, and 404", async () => {
    const registry = new Registry();
    new Counter({ name: "sd_test_total", help: "test", registers: [registry] }).inc(3);
    let natsUp = true;
    const server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      registry,
      readiness: {
        nats: () => (natsUp ? Promise.resolve() : Promise.reject(new Error("connection refused"))),
        postgres: () => Promise.resolve(),
      },
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { nats: "ok", postgres: "ok" } });
    natsUp = false;
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({
      status: "not-ready",
      checks: { nats: "connection refused", postgres: "ok" },
    });
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    expect(await metrics.text()).toContain("sd_test_total 3");
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    server.markShuttingDown();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(503);
    await server.close();
  });

  it("times out a check that never answers", async () => {
    const server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      registry: new Registry(),
      readiness: { stuck: () => new Promise(() => undefined) },
      checkTimeoutMs: 100,
    });
    const body = (await (await fetch(`${server.url}/readyz`)).json()) as {
      checks: Record<string, string>;
    };
    expect(body.checks.stuck).toBe("no answer within 100 ms");
    await server.close();
  });
});

describe("service lifecycle", () => {
  it("starts in-process with its own registry and stops in order", async () => {
    const order: string[] = [];
    const handle = await startService(
      {
        name: "inproc",
        start: (context) => {
          context.addReadinessCheck("dep", () => Promise.resolve());
          order.push("started");
          return Promise.resolve({
            stop: () => {
              order.push("stopped");
              return Promise.resolve();
            },
          });
        },
      },
      { env: { LOG_LEVEL: "silent" } },
    );
    expect((await fetch(`${handle.health.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${handle.health.url}/metrics`)).text()).toContain(
      'service="inproc"',
    );
    expect(await handle.shutdown("test")).toBe("clean");
    expect(order).toEqual(["started", "stopped"]);
  });

  it("reports a drain that overruns its deadline", async () => {
    const handle = await startService(
      {
        name: "slow",
        start: () => Promise.resolve({ stop: () => new Promise<void>(() => undefined) }),
      },
      { env: { LOG_LEVEL: "silent" }, drainTimeoutMs: 100 },
    );
    expect(await handle.shutdown("test")).toBe("timed-out");
  });

  it("exits 0 on SIGTERM after the service drained", async () => {
    const fixture = fileURLToPath(new URL("fixtures/service.mjs", import.meta.url));
    const child = spawn(process.execPath, [fixture], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: { msg?: string; health?: string }[] = [];
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, newline)) as { msg?: string; health?: string });
        buffer = buffer.slice(newline + 1);
      }
    });
    // "close", not "exit": stdout may still hold the last lines when the process exits.
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    for (let i = 0; i < 200 && !lines.some((l) => l.msg === "started"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const health = lines.find((l) => l.msg === "starting")?.health;
    expect(health).toBeDefined();
    expect((await fetch(`${health!}/readyz`)).status).toBe(200);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const messages = lines.map((l) => l.msg);
    expect(messages.indexOf("shutting down")).toBeLessThan(messages.indexOf("fixture stop begins"));
    expect(messages.indexOf("fixture drained")).toBeLessThan(messages.indexOf("stopped"));
  });
});
