// A known delivery history for the DORA and chart tests: deploys, incidents, a rollback, a freeze
// and budget evaluations of checkout and legacy, published onto JetStream as the services (and
// Argo's reporters) would, and stored by the real audit service. The gateway runs on loopback with
// a fixed clock, so "30d" always means the same range.
import { loadCatalog } from "@safedeploy/catalog";
import { createPool, query } from "@safedeploy/db";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, EventData } from "@safedeploy/schema";
import {
  budgetEvaluationEvent,
  createTestBus,
  createTestDatabase,
  incidentOpenedEvent,
  testServiceEnv,
  waitUntil,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import type { FastifyInstance } from "fastify";
import { auditService } from "@safedeploy/service-audit";
import { buildGateway } from "@safedeploy/service-gateway";
import type { SendCommand } from "@safedeploy/service-gateway";
import { CATALOG, testTokens } from "./gateway-harness.js";

export const NOW = new Date("2026-11-30T12:00:00.000Z");
const H = 3_600_000;
const D = 24 * H;
export const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
export { D, H };

function deployRecorded(
  service: string,
  revision: string,
  at: string,
  trigger: EventData<"governance.deploy-recorded">["trigger"],
  commitTime: string | null,
): Envelope<"governance.deploy-recorded"> {
  const reporter = trigger.startsWith("on-rollout") ? "argo-rollouts" : "argocd";
  return createEnvelope(
    {
      type: "governance.deploy-recorded",
      id: messageId("governance.deploy-recorded", service, revision, trigger),
      service,
      data: { reporter, app: service, revision, trigger, step: null, at, commitTime, details: {} },
    },
    { source: "gateway", time: at },
  );
}

function transitioned(service: string, incidentId: string, at: string) {
  return createEnvelope(
    {
      type: "incidents.transitioned",
      id: messageId("incidents.transitioned", incidentId, "resolved", at),
      service,
      data: {
        incidentId,
        from: "mitigated",
        to: "resolved",
        at,
        actor: "system",
        reason: "burn normal for 15m",
      },
    },
    { source: "incident", time: at },
  );
}

function rollbackExecuted(service: string, proposalId: string, incidentId: string, at: string) {
  return createEnvelope(
    {
      type: "governance.action-completed",
      id: messageId("governance.action-completed", proposalId),
      service,
      data: {
        proposalId,
        incidentId,
        kind: "rollback-rollout",
        at,
        branch: `safedeploy/${proposalId}`,
        commit: "0123456789abcdef0123456789abcdef01234567",
        prUrl: null,
        diff: "",
        dryRun: false,
      },
    },
    { source: "git-actuator", time: at },
  );
}

function freezeOpened(service: string, freezeId: string, from: string, until: string) {
  return createEnvelope(
    {
      type: "governance.freeze-opened",
      id: messageId("governance.freeze-opened", freezeId),
      service,
      data: { freezeId, from, until, reason: "quarter end", actor: "root", origin: "manual" },
    },
    { source: "policy", time: from },
  );
}

/** checkout availability is evaluated every 6 h over 30 days, the last 3 h ago (k = 0 the oldest). */
export const EVALUATIONS = 120;
export const evaluationTime = (k: number) => ago((EVALUATIONS - 1 - k) * 6 * H + 3 * H);
export const budgetAt = (k: number) => 1 - (0.6 * k) / (EVALUATIONS - 1);
/** The evaluation 2 h after INC-D1 opened burns fast: 18 over 1 h, 20 over 5 m; others 0.5. */
export const SPIKE = EVALUATIONS - 1 - 39;
export const burnAt = (k: number, window: "1h" | "5m") =>
  k === SPIKE ? (window === "1h" ? 18 : 20) : 0.5;

function evaluation(k: number): Envelope<"budget.evaluated"> {
  const envelope = budgetEvaluationEvent("checkout", evaluationTime(k), "normal", {
    budgetRemaining: budgetAt(k),
  });
  const burnRates = (["1h", "5m"] as const).map((window) => ({
    window,
    errorRatio: 0.001 * burnAt(k, window),
    burnRate: burnAt(k, window),
  }));
  return {
    ...envelope,
    data: { ...envelope.data, slos: envelope.data.slos.map((slo) => ({ ...slo, burnRates })) },
  };
}

/** Every message of the known history, in publishing order. */
export function knownHistory(): Envelope[] {
  return [
    // checkout c1: Argo CD and Argo Rollouts both report it (one deploy); an incident 1 h later.
    deployRecorded("checkout", "c1", ago(10 * D), "on-deployed", ago(10 * D + 2 * H)),
    deployRecorded("checkout", "c1", ago(10 * D - 600_000), "on-rollout-completed", null),
    incidentOpenedEvent("checkout", "INC-D1", ago(10 * D - H)),
    transitioned("checkout", "INC-D1", ago(10 * D - H - 45 * 60_000)),
    deployRecorded("checkout", "c2", ago(6 * D), "on-deployed", ago(6 * D + 30 * 60_000)),
    // c3 is rolled back 2 h after it went out.
    deployRecorded("checkout", "c3", ago(3 * D), "on-deployed", ago(3 * D + H)),
    rollbackExecuted("checkout", "PRP-D1", "INC-D1", ago(3 * D - 2 * H)),
    freezeOpened("checkout", "FRZ-D1", ago(3 * D - 3 * H), ago(2 * D)),
    // A failed sync is not a deploy.
    deployRecorded("checkout", "c4", ago(2 * D), "on-sync-failed", ago(2 * D + H)),
    deployRecorded("legacy", "l1", ago(5 * D), "on-deployed", null),
    // Opened a day ago, 4 days after legacy's deploy: no deploy's failure; not resolved.
    incidentOpenedEvent("legacy", "INC-D2", ago(D)),
    ...Array.from({ length: EVALUATIONS }, (_, k) => evaluation(k)),
  ];
}

/**
 * No service answers commands here: the page's release-train list is empty, anything else is
 * unavailable (503), as when its service is down.
 */
const noCommands = ((command: string) =>
  command === "train.list"
    ? Promise.resolve({ ok: true, result: { items: [] } })
    : Promise.reject(
        Object.assign(new Error(`${command}: no service`), { code: "unavailable" }),
      )) as SendCommand;

export interface DoraPlane {
  readonly harness: TestBus;
  readonly database: TestDatabase;
  readonly app: FastifyInstance;
  readonly url: string;
  stop(): Promise<void>;
}

/** NATS, PostgreSQL, the audit service and a listening gateway, with the known history stored. */
export async function startDoraPlane(): Promise<DoraPlane> {
  const harness = await createTestBus();
  await provision(harness.bus);
  const database = await createTestDatabase();
  const env = testServiceEnv(harness, { DATABASE_URL: database.url, SAFEDEPLOY_CATALOG: CATALOG });
  const services: ServiceHandle[] = [
    await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), { env }),
  ];
  const history = knownHistory();
  for (const envelope of history) await publishEvent(harness.bus, envelope);
  const pool = createPool({ connectionString: database.url, max: 4 });
  await waitUntil(
    async () => {
      const [row] = await query<{ n: string }>(pool, "SELECT count(*) AS n FROM audit_log");
      return Number(row?.n) >= history.length;
    },
    30_000,
    () => `the audit log holds fewer than ${history.length} messages`,
  );
  const loaded = await loadCatalog(CATALOG);
  if (!loaded.ok) throw new Error("the governance fixture catalog is invalid");
  const app = await buildGateway({
    pool,
    catalog: loaded.catalog,
    tokens: testTokens,
    sendCommand: noCommands,
    clock: { now: () => NOW },
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    harness,
    database,
    app,
    url,
    stop: async () => {
      await app.close();
      for (const service of services) await service.shutdown("test");
      await pool.end();
      await harness.cleanup();
      await database.drop();
    },
  };
}
