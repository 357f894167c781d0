import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO_VERSIONS, startDemoApp } from "../src/index.js";
import type { DemoApp } from "../src/index.js";

let app: DemoApp;

beforeAll(async () => {
  // No synthetic traffic: every request counted below is one this file sent.
  app = await startDemoApp({ service: "basket", rps: 0 });
});

afterAll(async () => {
  await app.close();
});

beforeEach(() => {
  app.setVersion("v1");
  app.setDependencyHealthy(true);
});

async function get(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${app.url}${path}`);
  return { status: response.status, body: await response.json() };
}

async function post(path: string, body: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${app.url}${path}`, { method: "POST", body });
  return { status: response.status, body: await response.json() };
}

describe("the demo app's health", () => {
  it("reports ok with the running version and its checks while version and dependency are fine", async () => {
    expect(await get("/healthz")).toEqual({
      status: 200,
      body: { status: "ok", version: "v1", checks: { version: "ok", dependency: "ok" } },
    });
  });

  it("a degraded version (v4) answers /healthz 200 with status degraded while / still serves 200s", async () => {
    expect(DEMO_VERSIONS.v4).toEqual({ errorRatio: 0, health: "degraded" });
    expect(await post("/admin/version", JSON.stringify({ version: "v4" }))).toEqual({
      status: 200,
      body: { version: "v4", errorRatio: 0 },
    });
    expect(await get("/healthz")).toEqual({
      status: 200,
      body: {
        status: "degraded",
        version: "v4",
        checks: { version: "degraded", dependency: "ok" },
      },
    });
    const before = app.counts();
    for (let i = 0; i < 20; i++) {
      expect(await get("/")).toEqual({
        status: 200,
        body: { service: "basket", version: "v4", ok: true },
      });
    }
    expect(app.counts()).toEqual({ "200": (before["200"] ?? 0) + 20, "500": before["500"] });
    expect(app.health().status).toBe("degraded");
  });

  it("the bad deploy (v2) fails requests but not its health content; an unknown version is healthy", async () => {
    app.setVersion("v2");
    expect((await get("/healthz")).body).toMatchObject({ status: "ok", version: "v2" });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await get("/")).status);
    expect(codes.filter((code) => code === 500)).toHaveLength(4);
    expect(await post("/admin/version", JSON.stringify({ version: "v9" }))).toEqual({
      status: 200,
      body: { version: "v9", errorRatio: 0 },
    });
    expect((await get("/healthz")).body).toMatchObject({ status: "ok", version: "v9" });
  });

  it("POST /admin/dependency takes the outside dependency down whatever the version, and back", async () => {
    expect(await post("/admin/dependency", JSON.stringify({ healthy: false }))).toEqual({
      status: 200,
      body: { status: "degraded", version: "v1", checks: { version: "ok", dependency: "down" } },
    });
    expect((await get("/healthz")).body).toMatchObject({ status: "degraded", version: "v1" });
    expect((await get("/")).status).toBe(200);
    app.setVersion("v3");
    expect((await get("/healthz")).body).toMatchObject({ status: "degraded", version: "v3" });
    expect(await post("/admin/dependency", JSON.stringify({ healthy: true }))).toMatchObject({
      status: 200,
      body: { status: "ok", checks: { dependency: "ok" } },
    });
    expect((await get("/healthz")).body).toMatchObject({ status: "ok", version: "v3" });
    // A degraded version stays degraded with the dependency healthy.
    app.setVersion("v4");
    expect(app.health()).toMatchObject({ status: "degraded", checks: { dependency: "ok" } });
  });

  it("the handle breaks and heals the dependency as the endpoint does", async () => {
    expect(app.setDependencyHealthy(false)).toEqual({
      status: "degraded",
      version: "v1",
      checks: { version: "ok", dependency: "down" },
    });
    expect((await get("/healthz")).body).toMatchObject({ status: "degraded" });
    app.setDependencyHealthy(true);
    expect((await get("/healthz")).body).toMatchObject({ status: "ok" });
  });

  it.each([
    ["no field", "{}"],
    ["a string", JSON.stringify({ healthy: "false" })],
    ["a number", JSON.stringify({ healthy: 0 })],
    ["not JSON", "healthy=false"],
    ["an array", "[false]"],
  ])(
    "refuses a dependency body with %s: 400 naming the field, nothing changed",
    async (_, body) => {
      const refused = await post("/admin/dependency", body);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: "invalid", field: "healthy" });
      expect((refused.body as { message: string }).message).toMatch(/healthy/);
      expect(app.health().status).toBe("ok");
    },
  );

  it("answers 404 to other methods on the admin paths", async () => {
    expect((await get("/admin/dependency")).status).toBe(404);
  });
});
