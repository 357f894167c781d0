import { loadCatalog } from "@safedeploy/catalog";
import type { Catalog } from "@safedeploy/catalog";
import { createPool } from "@safedeploy/db";
import { provision, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createTestBus, createTestDatabase, testServiceEnv } from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import type { FastifyInstance } from "fastify";
// The gateway end-to-end tests run the real services that answer its commands and fill its
// read model, as test/ does; the gateway's own code never imports them.
import { auditService } from "@safedeploy/service-audit";
import { incidentService } from "@safedeploy/service-incident";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { buildGateway, tokenHash, tokenStore } from "@safedeploy/service-gateway";
import type { GatewayDeps, SendCommand } from "@safedeploy/service-gateway";

export const CATALOG = new URL("../fixtures/catalog/governance", import.meta.url).pathname;

/** The bearer tokens of the tests, by role. */
export const TOKENS = {
  viewer: "viewer-secret-token",
  approver: "approver-secret-token",
  admin: "admin-secret-token",
} as const;
export const NAMES = { viewer: "vera", approver: "ana", admin: "root" } as const;

export const testTokens = tokenStore(
  (["viewer", "approver", "admin"] as const).map((role) => ({
    name: NAMES[role],
    role,
    sha256: tokenHash(TOKENS[role]),
  })),
);

export const bearer = (role: keyof typeof TOKENS) => ({
  authorization: `Bearer ${TOKENS[role]}`,
});

/** NATS, PostgreSQL, the audit, policy, incident and proposal services, and a gateway. */
export interface ControlPlane {
  readonly harness: TestBus;
  readonly database: TestDatabase;
  readonly pool: ReturnType<typeof createPool>;
  readonly catalog: Catalog;
  readonly app: FastifyInstance;
  readonly send: SendCommand;
  /** Another gateway over the same control plane, with other dependencies. */
  gateway(overrides: Partial<GatewayDeps>): Promise<FastifyInstance>;
  stop(): Promise<void>;
}

export async function startControlPlane(): Promise<ControlPlane> {
  const harness = await createTestBus();
  await provision(harness.bus);
  const database = await createTestDatabase();
  const env = testServiceEnv(harness, { DATABASE_URL: database.url, SAFEDEPLOY_CATALOG: CATALOG });
  const services: ServiceHandle[] = [];
  services.push(
    await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), { env }),
  );
  for (const definition of [policyService, incidentService, proposalService]) {
    services.push(await startService(definition, { env }));
  }
  const loaded = await loadCatalog(CATALOG);
  if (!loaded.ok) throw new Error("the governance fixture catalog is invalid");
  const pool = createPool({ connectionString: database.url, max: 6 });
  const send: SendCommand = (command, request) => requestCommand(harness.bus, command, request);
  const apps: FastifyInstance[] = [];
  const gateway = async (overrides: Partial<GatewayDeps>) => {
    const app = await buildGateway({
      pool,
      catalog: loaded.catalog,
      tokens: testTokens,
      sendCommand: send,
      clock: { now: () => new Date() },
      events: { pollMs: 50, heartbeatMs: 300 },
      ...overrides,
    });
    apps.push(app);
    return app;
  };
  const app = await gateway({});
  return {
    harness,
    database,
    pool,
    catalog: loaded.catalog,
    app,
    send,
    gateway,
    stop: async () => {
      await Promise.all(apps.map((a) => a.close()));
      await Promise.all(services.map((s) => s.shutdown("test")));
      await pool.end();
      await harness.cleanup();
      await database.drop();
    },
  };
}
