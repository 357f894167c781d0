import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPool } from "@safedeploy/db";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope } from "@safedeploy/schema";
import { auditService } from "@safedeploy/service-audit";
import { createNotifierService } from "@safedeploy/service-notifier";
import {
  closeServers,
  createTestBus,
  createTestDatabase,
  incidentOpenedEvent,
  listenLocal,
  readStream,
  serviceYaml,
  testServiceEnv,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A receiver following Standard Webhooks 1.0: it verifies each request with its own HMAC (not
// the notifier's code), records it, and answers as its path says.
const SECRET = `whsec_${Buffer.from("a-test-signing-key-of-32-bytes!!").toString("base64")}`;

interface Received {
  readonly path: string;
  readonly id: string;
  readonly timestamp: string;
  readonly verified: boolean;
  readonly body: { type: string; timestamp: string; data: Record<string, unknown> };
}

function verify(id: string, timestamp: string, signature: string, body: string): boolean {
  const key = Buffer.from(SECRET.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return signature.split(" ").some((entry) => {
    const [version, mac = ""] = entry.split(",");
    return (
      version === "v1" &&
      mac.length === expected.length &&
      timingSafeEqual(Buffer.from(mac), Buffer.from(expected))
    );
  });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function receiver(received: Received[]): Server {
  const seen = new Map<string, number>();
  return createServer((request, response) => {
    void readBody(request).then((text) => {
      const path = request.url ?? "/";
      const header = (name: string) => String(request.headers[name] ?? "");
      const id = header("webhook-id");
      received.push({
        path,
        id,
        timestamp: header("webhook-timestamp"),
        verified: verify(id, header("webhook-timestamp"), header("webhook-signature"), text),
        body: JSON.parse(text) as Received["body"],
      });
      const attempt = (seen.get(`${path}:${id}`) ?? 0) + 1;
      seen.set(`${path}:${id}`, attempt);
      if (path === "/slow" && attempt === 1) {
        setTimeout(() => response.writeHead(200).end(), 2_000);
        return;
      }
      const status = path === "/gone" ? 404 : path === "/flaky" && attempt <= 2 ? 503 : 204;
      response.writeHead(status).end();
    });
  });
}

/** Polls `probe` (sync or async) until it holds, or fails after `timeoutMs`. */
async function eventually(
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const notifier = (name: string, url: string, extra = "") => `
apiVersion: safedeploy.dev/v1
kind: Notifier
metadata: { name: ${name} }
spec:
  type: webhook
  url: ${url}
  secretFile: hook-secret
  timeout: 500ms
  maxAttempts: 4
${extra}`;

describe("outbound webhooks (Standard Webhooks 1.0) from the notifier", () => {
  let harness: TestBus;
  let database: TestDatabase;
  let dir: string;
  const servers: Server[] = [];
  const services: ServiceHandle[] = [];
  const received: Received[] = [];
  let notifierHandle: ServiceHandle;

  beforeAll(async () => {
    harness = await createTestBus();
    await provision(harness.bus);
    database = await createTestDatabase();
    const server = receiver(received);
    servers.push(server);
    const base = await listenLocal(server);
    dir = await mkdtemp(join(tmpdir(), "sd-notify-"));
    await writeFile(join(dir, "hook-secret"), `${SECRET}\n`);
    const catalog = [
      serviceYaml("checkout"),
      serviceYaml("payments"),
      notifier("ops", `${base}/ok`, "  events: [incident.opened, freeze.opened]"),
      notifier("flaky", `${base}/flaky`, "  services: [checkout]\n  events: [incident.opened]"),
      notifier("gone", `${base}/gone`, "  events: [freeze.opened]"),
      notifier("slow", `${base}/slow`, "  services: [payments]"),
    ].join("\n---\n");
    await writeFile(join(dir, "catalog.yaml"), catalog);
    const env = testServiceEnv(harness, {
      DATABASE_URL: database.url,
      SAFEDEPLOY_CATALOG: join(dir, "catalog.yaml"),
    });
    services.push(
      await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), { env }),
    );
    notifierHandle = await startService(
      createNotifierService({
        publicUrl: "https://safedeploy.example",
        secretsDir: dir,
        retryScheduleMs: [200, 400],
      }),
      { env },
    );
    services.push(notifierHandle);
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.shutdown("test")));
    await closeServers(servers);
    await harness.cleanup();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("signs, retries 5xx with one id, never resends what was delivered, and audits it", async () => {
    const at = new Date().toISOString();
    await publishEvent(harness.bus, incidentOpenedEvent("checkout", "INC-7", at));
    await eventually(() => received.filter((r) => r.path === "/flaky").length >= 3, 15_000);
    // Let any further redelivery happen: none may reach /ok or /flaky again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const ok = received.filter((r) => r.path === "/ok");
    const flaky = received.filter((r) => r.path === "/flaky");
    expect(ok).toHaveLength(1);
    expect(flaky).toHaveLength(3);
    expect(new Set(flaky.map((r) => r.id)).size).toBe(1);
    expect(flaky[0]?.id).not.toBe(ok[0]?.id);
    expect([...ok, ...flaky].every((r) => r.verified)).toBe(true);
    expect(ok[0]?.body).toMatchObject({
      type: "incident.opened",
      data: {
        service: "checkout",
        incidentId: "INC-7",
        links: { incident: "https://safedeploy.example/v1/incidents/INC-7" },
        event: { slo: "availability", severity: "fast-burn" },
      },
    });
    const outcomes = (await readStream(harness.bus, "GOVERNANCE")).filter((e) =>
      e.type.startsWith("governance.notification-"),
    );
    const flakyOutcomes = outcomes.filter(
      (e) => (e.data as { notifier?: string }).notifier === "flaky",
    );
    expect(flakyOutcomes.map((e) => e.type)).toEqual([
      "governance.notification-failed",
      "governance.notification-failed",
      "governance.notification-delivered",
    ]);
    expect(flakyOutcomes[2]?.data).toMatchObject({
      attempts: 3,
      status: 204,
      deliveryId: flaky[0]?.id,
    });
    const pool = createPool({ connectionString: database.url, max: 1 });
    try {
      await eventually(async () => {
        const { rows } = await pool.query<{ n: string }>(
          "SELECT count(*) AS n FROM audit_log WHERE type LIKE 'governance.notification-%' AND payload->'data'->>'notifier' = 'flaky'",
        );
        return Number(rows[0]?.n) === 3;
      }, 10_000);
    } finally {
      await pool.end();
    }
  });

  it("gives up at once on a 4xx, and says so on /metrics and in the stream", async () => {
    const at = new Date().toISOString();
    await publishEvent(
      harness.bus,
      createEnvelope(
        {
          type: "governance.freeze-opened",
          id: `governance.freeze-opened:F-${at}`,
          service: "payments",
          data: {
            freezeId: `F-${at}`,
            from: at,
            until: at,
            reason: "release week",
            actor: "root",
            origin: "manual",
          },
        },
        { source: "policy", time: at },
      ),
    );
    await eventually(() => received.some((r) => r.path === "/gone"), 10_000);
    await eventually(
      async () =>
        (await notifierHandle.registry.metrics()).includes(
          'safedeploy_notification_failures_total{notifier="gone"',
        ),
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(received.filter((r) => r.path === "/gone")).toHaveLength(1);
    const metrics = await notifierHandle.registry.metrics();
    expect(metrics).toMatch(
      /safedeploy_notification_failures_total\{notifier="gone",service="notifier"\} 1/,
    );
    const failed = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) =>
        e.type === "governance.notification-failed" &&
        (e.data as { notifier?: string }).notifier === "gone",
    );
    expect(failed.map((e) => e.data)).toEqual([
      expect.objectContaining({ attempt: 1, status: 404, final: true, event: "freeze.opened" }),
    ]);
  });

  it("retries a timeout with the same delivery id", async () => {
    await publishEvent(
      harness.bus,
      incidentOpenedEvent("payments", "INC-8", new Date().toISOString()),
    );
    await eventually(() => received.filter((r) => r.path === "/slow").length >= 2, 15_000);
    const slow = received.filter((r) => r.path === "/slow");
    expect(new Set(slow.map((r) => r.id)).size).toBe(1);
    await eventually(
      async () =>
        (await readStream(harness.bus, "GOVERNANCE")).some(
          (e) =>
            e.type === "governance.notification-delivered" &&
            (e.data as { notifier?: string }).notifier === "slow",
        ),
      10_000,
    );
    const failed = (await readStream(harness.bus, "GOVERNANCE")).find(
      (e) =>
        e.type === "governance.notification-failed" &&
        (e.data as { notifier?: string }).notifier === "slow",
    );
    expect(failed?.data).toMatchObject({
      status: null,
      final: false,
      error: "no answer within 500 ms",
    });
  });
});
