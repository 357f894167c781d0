import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { startHealthServer } from "@safedeploy/runtime";
import type { HealthServer, HealthServerOptions, ReadinessCheck } from "@safedeploy/runtime";

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(options: Partial<HealthServerOptions> = {}): Promise<HealthServer> {
  const server = await startHealthServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    readiness: {},
    ...options,
  });
  servers.push(server);
  return server;
}

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

describe("health server", () => {
  it("answers /readyz 200 when every check passes and 503 naming the failing one", async () => {
    let natsUp = true;
    const server = await serve({
      readiness: {
        nats: () => (natsUp ? Promise.resolve() : Promise.reject(new Error("connection refused"))),
        postgres: () => Promise.resolve(),
      },
    });
    expect(await get(`${server.url}/readyz`)).toEqual({
      status: 200,
      body: { status: "ready", checks: { nats: "ok", postgres: "ok" } },
    });
    natsUp = false;
    expect(await get(`${server.url}/readyz?verbose=1`)).toEqual({
      status: 503,
      body: { status: "not-ready", checks: { nats: "connection refused", postgres: "ok" } },
    });
    expect(await get(`${server.url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
  });

  it("masks credentials in a check's error message", async () => {
    const server = await serve({
      readiness: {
        postgres: () => Promise.reject(new Error("cannot reach postgres://app:hunter2@db:5432/sd")),
        thrower: () => {
          throw new Error("thrown before any promise");
        },
      },
    });
    const { status, body } = await get(`${server.url}/readyz`);
    expect(status).toBe(503);
    expect(body).toEqual({
      status: "not-ready",
      checks: {
        postgres: "cannot reach postgres://app:***@db:5432/sd",
        thrower: "thrown before any promise",
      },
    });
  });

  it("times out a check that never answers and aborts its signal", async () => {
    let aborted = false;
    const server = await serve({
      checkTimeoutMs: 100,
      readiness: {
        stuck: (signal) =>
          new Promise(() => {
            signal.addEventListener("abort", () => {
              aborted = true;
            });
          }),
      },
    });
    expect(await get(`${server.url}/readyz`)).toEqual({
      status: 503,
      body: { status: "not-ready", checks: { stuck: "no answer within 100 ms" } },
    });
    expect(aborted).toBe(true);
  });

  it("reads the checks on every request, so checks added later count", async () => {
    const readiness: Record<string, ReadinessCheck> = {};
    const server = await serve({ readiness });
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
    readiness.late = () => Promise.reject(new Error("not yet"));
    expect(await get(`${server.url}/readyz`)).toMatchObject({
      status: 503,
      body: { checks: { late: "not yet" } },
    });
  });

  it("follows the process's phases: starting, running, shutting down", async () => {
    const server = await serve({ phase: "starting", readiness: { dep: () => Promise.resolve() } });
    expect(await get(`${server.url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
    expect(await get(`${server.url}/readyz`)).toEqual({
      status: 503,
      body: { status: "starting", checks: {} },
    });
    server.markRunning();
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
    server.markShuttingDown();
    server.markRunning(); // too late: shutting down is final
    expect(await get(`${server.url}/healthz`)).toEqual({
      status: 503,
      body: { status: "shutting-down" },
    });
    expect(await get(`${server.url}/readyz`)).toEqual({
      status: 503,
      body: { status: "shutting-down", checks: {} },
    });
  });

  it("serves the registry's metrics in Prometheus text format", async () => {
    const registry = new Registry();
    new Counter({ name: "sd_test_total", help: "test", registers: [registry] }).inc(3);
    const server = await serve({ registry });
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(registry.contentType);
    expect(await response.text()).toContain("# TYPE sd_test_total counter\nsd_test_total 3");
  });

  it("answers 404 to other paths and 405 to other methods", async () => {
    const server = await serve();
    expect(await get(`${server.url}/nope`)).toEqual({
      status: 404,
      body: { error: "not_found", message: "no such route" },
    });
    expect((await fetch(`${server.url}/`)).status).toBe(404);
    const post = await fetch(`${server.url}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${server.url}/healthz`, { method: "HEAD" })).status).toBe(200);
  });

  it("closes with keep-alive connections open, and frees its port", async () => {
    const server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      registry: new Registry(),
      readiness: {},
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
