import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { budgetEvaluationEvent, testServiceEnv, waitUntil } from "@safedeploy/testing";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { CATALOG, startControlPlane } from "./gateway-harness.js";
import type { ControlPlane } from "./gateway-harness.js";

// The gateway as it runs in production (its service, a real port, a tokens file it follows),
// over real NATS and PostgreSQL, with its limits shortened so the test is quick.
let plane: ControlPlane;
let handle: ServiceHandle;
let url = "";
let tokensFile = "";
const POLL_MS = 50;
const STREAMS_PER_TOKEN = 4;

const tokensYaml = (names: readonly string[]) =>
  names
    .map((name) => `- { name: ${name}, role: viewer, sha256: ${tokenHash(`${name}-token`)} }`)
    .join("\n") + "\n";
const as = (name: string) => ({ authorization: `Bearer ${name}-token` });

beforeAll(async () => {
  plane = await startControlPlane();
  const dir = await mkdtemp(join(tmpdir(), "gateway-limits-"));
  tokensFile = join(dir, "tokens.yaml");
  await writeFile(tokensFile, tokensYaml(["load", "keep", "gone"]));
  handle = await startService(
    createGatewayService({
      onListening: (address) => (url = address),
      rateLimitPerMinute: 100_000,
      statementTimeoutMs: 300,
      tokensReloadMs: 200,
      events: { pollMs: POLL_MS, heartbeatMs: 1_000, streamsPerToken: STREAMS_PER_TOKEN },
    }),
    {
      env: testServiceEnv(plane.harness, {
        DATABASE_URL: plane.database.url,
        SAFEDEPLOY_CATALOG: CATALOG,
        SAFEDEPLOY_TOKENS: tokensFile,
        GATEWAY_PORT: "0",
      }),
    },
  );
});

afterAll(async () => {
  await handle.shutdown("test");
  await plane.stop();
});

async function eventsReads(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^gateway_events_reads_total (\d+)$/m.exec(text)?.[1] ?? NaN);
}

describe("event streams per token", () => {
  it("caps one token's streams with a 429 while PostgreSQL stays responsive, from one poller", async () => {
    const controllers: AbortController[] = [];
    const open = async (who = "load") => {
      const controller = new AbortController();
      controllers.push(controller);
      return fetch(`${url}/v1/events`, { headers: as(who), signal: controller.signal });
    };
    try {
      const admitted = await Promise.all(Array.from({ length: STREAMS_PER_TOKEN }, () => open()));
      expect(admitted.map((r) => r.status)).toEqual(Array(STREAMS_PER_TOKEN).fill(200));

      // Many more at once, with a plain query meanwhile: every extra stream is refused, and
      // the database answers as quickly as ever.
      const started = Date.now();
      const [refused, probe] = await Promise.all([
        Promise.all(Array.from({ length: 60 }, () => open())),
        (async () => {
          const t = Date.now();
          await plane.pool.query("SELECT count(*) FROM audit_log");
          return Date.now() - t;
        })(),
      ]);
      expect(new Set(refused.map((r) => r.status))).toEqual(new Set([429]));
      const body = (await refused[0]!.json()) as { error: string; message: string };
      expect(body).toMatchObject({ error: "rate_limited" });
      expect(body.message).toContain(`${STREAMS_PER_TOKEN} event streams`);
      expect(refused[0]!.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(probe).toBeLessThan(1_000);
      expect(Date.now() - started).toBeLessThan(10_000);
      // Another token has its own streams.
      expect((await open("keep")).status).toBe(200);

      // Five open streams share one poll loop: about one read per poll interval, not one per stream.
      const before = await eventsReads();
      const from = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const reads = (await eventsReads()) - before;
      const ticks = (Date.now() - from) / POLL_MS;
      expect(reads).toBeGreaterThan(0);
      expect(reads).toBeLessThan(ticks * 1.5 + 5);

      // Closing one makes room for another.
      controllers[0]!.abort();
      await waitUntil(
        async () => {
          const again = await open();
          if (again.status === 200) return true;
          await again.body?.cancel();
          return false;
        },
        5_000,
        () => "a closed stream never freed its place",
      );
    } finally {
      for (const controller of controllers) controller.abort();
    }
  });
});

describe("statement timeout", () => {
  it("answers 503 with a clear error when a query runs out of time, never 500", async () => {
    const blocker = await plane.pool.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE");
      const started = Date.now();
      const response = await fetch(`${url}/v1/incidents`, { headers: as("keep") });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: string; message: string };
      expect(body.error).toBe("unavailable");
      expect(body.message).toMatch(/statement timeout/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await blocker.query("ROLLBACK");
      blocker.release();
    }
    expect((await fetch(`${url}/v1/incidents`, { headers: as("keep") })).status).toBe(200);
  });
});

describe("audit verify", () => {
  it("answers from cache for the same chain head and checks again after a new row", async () => {
    const verify = () => fetch(`${url}/v1/audit/verify`, { headers: as("keep") });
    const first = await verify();
    expect(first.status).toBe(200);
    const firstBody = (await first.json()) as { intact: boolean; checkedAt: string };
    expect(firstBody.intact).toBe(true);
    const second = await verify();
    expect(second.headers.get("x-safedeploy-cache")).toBe("hit");
    expect(((await second.json()) as { checkedAt: string }).checkedAt).toBe(firstBody.checkedAt);

    await publishEvent(
      plane.harness.bus,
      budgetEvaluationEvent("legacy", new Date().toISOString(), "normal"),
    );
    await waitUntil(
      async () => {
        const next = await verify();
        const body = (await next.json()) as { checkedAt: string; intact: boolean };
        return next.headers.get("x-safedeploy-cache") === "miss" && body.intact;
      },
      10_000,
      () => "a new row never made verify check again",
    );
  });
});

describe("tokens file", () => {
  it("refuses a removed token after reload, and keeps the tokens when the file turns invalid", async () => {
    const services = (who: string) => fetch(`${url}/v1/services`, { headers: as(who) });
    expect((await services("gone")).status).toBe(200);
    await writeFile(tokensFile, tokensYaml(["load", "keep"]));
    await waitUntil(
      async () => (await services("gone")).status === 401,
      5_000,
      () => "a removed token was still accepted",
    );
    expect((await services("keep")).status).toBe(200);

    await writeFile(tokensFile, "- { name: keep, role: root }\n");
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect((await services("keep")).status).toBe(200);
    expect((await services("gone")).status).toBe(401);
  });
});
