// Recurring freeze windows (`kind: FreezeWindow`) through the real policy, audit and gateway
// services on real NATS and PostgreSQL, the gateway listening on loopback: the gate names the
// window and its next opening, allow windows freeze outside them, an admin's emergency override
// lets the service through and is recorded in the audit log, and manual freezes still work.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "@safedeploy/db";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { auditService } from "@safedeploy/service-audit";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { policyService } from "@safedeploy/service-policy";
import {
  createTestBus,
  createTestDatabase,
  serviceYaml,
  testServiceEnv,
  yamlDocuments,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";

const ZONE = "Europe/Berlin";
const TOKENS = { viewer: "fw-viewer-token", admin: "fw-admin-token" } as const;

/** Local wall time in ZONE, `YYYY-MM-DDTHH:mm:ss` (sv-SE formats dates as ISO does). */
const localWallTime = (at: Date) =>
  new Intl.DateTimeFormat("sv-SE", {
    timeZone: ZONE,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  })
    .format(at)
    .replace(" ", "T");

const started = new Date(Math.floor(Date.now() / 1000) * 1000);
const HOUR = 3_600_000;
const freezeWindows = `apiVersion: safedeploy.dev/v1
kind: FreezeWindow
metadata: { name: change-freeze }
spec:
  effect: deny
  dtstart: "${localWallTime(new Date(started.getTime() - HOUR))}"
  timeZone: ${ZONE}
  rrule: FREQ=DAILY
  duration: 3h
  services: [checkout]
  reason: nightly batch
---
apiVersion: safedeploy.dev/v1
kind: FreezeWindow
metadata: { name: release-hours }
spec:
  effect: allow
  dtstart: "${localWallTime(new Date(started.getTime() + 5 * HOUR))}"
  timeZone: ${ZONE}
  rrule: FREQ=DAILY
  duration: 1h
  owners: [team-cart]
  reason: releases only in the release hour
`;

let root: string;
let harness: TestBus;
let database: TestDatabase;
let gatewayUrl = "";
const services: ServiceHandle[] = [];

const api = async (role: keyof typeof TOKENS, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${gatewayUrl}/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKENS[role]}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

interface Reason {
  code: string;
  message: string;
  value: unknown;
  threshold: unknown;
}
const gateReasons = async (service: string) =>
  (await api("viewer", "GET", `/services/${service}/gate`)).body.reasons as Reason[];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "freeze-window-e2e-"));
  await writeFile(
    join(root, "catalog.yaml"),
    yamlDocuments([serviceYaml("checkout"), serviceYaml("cart"), freezeWindows]),
  );
  await writeFile(
    join(root, "tokens.yaml"),
    `- { name: vera, role: viewer, sha256: ${tokenHash(TOKENS.viewer)} }\n` +
      `- { name: root, role: admin, sha256: ${tokenHash(TOKENS.admin)} }\n`,
  );
  harness = await createTestBus();
  await provision(harness.bus);
  database = await createTestDatabase();
  const env = testServiceEnv(harness, {
    DATABASE_URL: database.url,
    SAFEDEPLOY_CATALOG: join(root, "catalog.yaml"),
    SAFEDEPLOY_TOKENS: join(root, "tokens.yaml"),
    SAFEDEPLOY_HOME: join(root, "home"),
    GATEWAY_PORT: "0",
  });
  for (const definition of [
    auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }),
    policyService,
    createGatewayService({ onListening: (url) => (gatewayUrl = url) }),
  ]) {
    services.push(await startService(definition, { env }));
  }
}, 60_000);

afterAll(async () => {
  for (const service of services.reverse()) await service.shutdown("test");
  await harness.cleanup();
  await database.drop();
  await rm(root, { recursive: true, force: true });
});

describe("recurring freeze windows", () => {
  it("the gate names the deny window in force and its next opening", async () => {
    expect(gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const gate = await api("viewer", "GET", "/services/checkout/gate");
    expect(gate.status).toBe(200);
    expect(gate.body.allowed).toBe(false);
    const freeze = (gate.body.reasons as Reason[]).find((r) => r.code === "freeze-active");
    expect(freeze?.value).toBe("recurring:change-freeze");
    expect(freeze?.message).toMatch(
      /^recurring freeze until .*deny window change-freeze .*nightly batch; next opening /,
    );
    // The occurrence began an hour before the test and lasts three: it opens two hours after.
    expect(freeze?.threshold).toBe(new Date(started.getTime() + 2 * HOUR).toISOString());
  });

  it("an allow window freezes its services outside it, until it opens", async () => {
    const freeze = (await gateReasons("cart")).find((r) => r.code === "freeze-active");
    expect(freeze?.message).toContain("outside every allow window (release-hours)");
    expect(freeze?.threshold).toBe(new Date(started.getTime() + 5 * HOUR).toISOString());
  });

  it("only an admin may override, for at most 24 hours", async () => {
    const until = new Date(Date.now() + HOUR).toISOString();
    const body = { service: "checkout", until, reason: "hotfix for INC-1" };
    expect((await api("viewer", "POST", "/freezes/overrides", body)).status).toBe(403);
    const tooLong = await api("admin", "POST", "/freezes/overrides", {
      ...body,
      until: new Date(Date.now() + 48 * HOUR).toISOString(),
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.details).toEqual([expect.objectContaining({ in: "body", path: "until" })]);
  });

  it("an admin's override lets the service through its windows and is recorded", async () => {
    const until = new Date(Date.now() + HOUR).toISOString();
    const override = await api("admin", "POST", "/freezes/overrides", {
      service: "checkout",
      until,
      reason: "hotfix for INC-1",
    });
    expect(override.status).toBe(201);
    expect(override.body).toMatchObject({
      service: "checkout",
      actor: "root",
      until,
      windows: ["change-freeze"],
    });
    const reasons = await gateReasons("checkout");
    expect(reasons.some((r) => r.code === "freeze-active")).toBe(false);
    // The cart's allow window is not overridden by the checkout's override.
    expect((await gateReasons("cart")).some((r) => r.code === "freeze-active")).toBe(true);

    const pool = createPool({ connectionString: database.url, max: 1 });
    try {
      let rows: { payload: { data: Record<string, unknown> } }[] = [];
      for (let i = 0; i < 100 && rows.length === 0; i++) {
        ({ rows } = await pool.query(
          "SELECT payload FROM audit_log WHERE type = 'governance.freeze-overridden' AND service = 'checkout'",
        ));
        if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]?.payload.data).toMatchObject({
        actor: "root",
        reason: "hotfix for INC-1",
        until,
        windows: ["change-freeze"],
      });
    } finally {
      await pool.end();
    }
  });

  it("manual freezes still freeze an overridden service", async () => {
    const created = await api("admin", "POST", "/freezes", {
      service: "checkout",
      until: new Date(Date.now() + HOUR).toISOString(),
      reason: "manual freeze",
    });
    expect(created.status).toBe(201);
    const freeze = (await gateReasons("checkout")).find((r) => r.code === "freeze-active");
    expect(freeze?.message).toMatch(/^manual freeze until .*: manual freeze$/);
  });
});
