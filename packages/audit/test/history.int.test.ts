// The history reads of the DORA metrics and the charts against a real PostgreSQL: what they find,
// what they leave out (malformed messages, other SLOs, dry runs), that a malformed time can
// neither fail an append nor a read, and that the queries can use the history indexes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, query, withTransaction } from "@safedeploy/db";
import { messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { budgetEvaluationEvent, createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import {
  appendBatch,
  migrateAudit,
  readChartMarkers,
  readDoraHistory,
  readEvaluationHistory,
  readIncidentTimeline,
} from "../src/index.js";
import type { AuditPool } from "../src/index.js";
import { asMessages, at, byStream, envelope, incidentStory } from "./fixtures.js";

let database: TestDatabase;
let pool: AuditPool;

const deploy = (revision: string, minutes: number, trigger: "on-deployed" | "on-rollout-aborted") =>
  envelope(
    "governance.deploy-recorded",
    messageId("governance.deploy-recorded", "checkout", revision, trigger),
    "checkout",
    {
      reporter: "argocd",
      app: "checkout",
      revision,
      trigger,
      step: null,
      at: at(minutes),
      commitTime: at(minutes - 30),
      details: {},
    },
    minutes,
  );

function history(): Envelope[] {
  const evaluations = [0, 10, 20, 30].map((minutes) => {
    return budgetEvaluationEvent("checkout", at(minutes), "normal", {
      slo: "latency",
      budgetRemaining: 1 - minutes / 100,
      burn1h: minutes === 20 ? 15 : 1,
    });
  });
  return [
    deploy("r1", -5, "on-deployed"),
    deploy("r2", 40, "on-rollout-aborted"),
    ...incidentStory("checkout", "INC-H1", "PRP-H1"),
    ...evaluations,
    // Stored twice (published again after JetStream's duplicate window): counted once.
    ...evaluations.slice(1, 2),
  ];
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 4 });
  await migrateAudit(pool);
  for (const [stream, messages] of byStream(history())) {
    await appendBatch(pool, stream, messages);
  }
  // Malformed times: stored (the log keeps every message), never an error, never evidence.
  const broken = { ...deploy("r9", 1, "on-deployed"), id: "broken-deploy" };
  const badTime = { ...broken, data: { ...broken.data, at: "2026-13-45T99:00:00Z" } };
  const badEval = budgetEvaluationEvent("checkout", at(15), "normal");
  const badEvaluation = {
    ...badEval,
    id: "broken-eval",
    data: { ...badEval.data, evaluatedAt: "soon" },
  };
  await appendBatch(pool, "GOVERNANCE", asMessages([badTime], 100));
  await appendBatch(pool, "BUDGET", asMessages([badEvaluation], 100));
}, 60_000);

afterAll(async () => {
  await pool.end();
  await database.drop();
});

const DAY = { since: at(-60), until: at(60) };

describe("readDoraHistory", () => {
  it("reads deploys, incidents with their resolution, and rollbacks; malformed ones are left out", async () => {
    const found = await readDoraHistory(pool, DAY, { lookbackMs: 0, lookaheadMs: 0 });
    expect(found.deployEvents.map((d) => [d.revision, d.trigger])).toEqual([
      ["r1", "on-deployed"],
      ["r2", "on-rollout-aborted"],
    ]);
    expect(found.incidents).toEqual([
      { id: "INC-H1", service: "checkout", openedAt: at(1), resolvedAt: at(30) },
    ]);
    expect(found.rollbacks).toEqual([
      { service: "checkout", at: at(6), kind: "rollback-executed" },
      { service: "checkout", at: at(40), kind: "rollout-aborted" },
    ]);
  });

  it("looks before and after the range only as far as asked", async () => {
    const later = await readDoraHistory(
      pool,
      { since: at(0), until: at(60) },
      {
        lookbackMs: 0,
        lookaheadMs: 0,
      },
    );
    expect(later.deployEvents.map((d) => d.revision)).toEqual(["r2"]);
    const wider = await readDoraHistory(
      pool,
      { since: at(0), until: at(60) },
      {
        lookbackMs: 10 * 60_000,
        lookaheadMs: 0,
      },
    );
    expect(wider.deployEvents.map((d) => d.revision)).toEqual(["r1", "r2"]);
  });
});

describe("readEvaluationHistory", () => {
  it("folds one SLO's evaluations (each once) into buckets: last budget, highest burn per window", async () => {
    const fine = await readEvaluationHistory(
      pool,
      { service: "checkout", slo: "latency" },
      DAY,
      60_000,
    );
    expect(fine.evaluations).toBe(4);
    expect(fine.points.map((p) => [p.at, p.budgetRemaining])).toEqual([
      [at(0), 1],
      [at(10), 0.9],
      [at(20), 0.8],
      [at(30), 0.7],
    ]);
    // 20-minute buckets from the epoch: [0, 20) and [20, 40) of this hour.
    const coarse = await readEvaluationHistory(
      pool,
      { service: "checkout", slo: "latency" },
      DAY,
      20 * 60_000,
    );
    expect(coarse.points).toEqual([
      { at: at(10), budgetRemaining: 0.9, burnRates: [{ window: "1h", burnRate: 1 }] },
      { at: at(30), budgetRemaining: 0.7, burnRates: [{ window: "1h", burnRate: 15 }] },
    ]);
  });
});

describe("readChartMarkers and readIncidentTimeline", () => {
  it("marks the incident opened and resolved and the deploys, by time", async () => {
    const markers = await readChartMarkers(pool, "checkout", DAY);
    expect(markers.map((m) => [m.kind, m.at, m.ref])).toEqual([
      ["deploy", at(-5), "r1"],
      ["incident-opened", at(1), "INC-H1"],
      ["incident-resolved", at(30), "INC-H1"],
    ]);
  });

  it("tells an incident's story with its proposal, approval, action and the deploy before it", async () => {
    const timeline = await readIncidentTimeline(pool, "INC-H1", 3_600_000, at(60));
    expect(timeline).toMatchObject({ service: "checkout", openedAt: at(1), resolvedAt: at(30) });
    expect(timeline?.entries.map((e) => e.type)).toEqual([
      "governance.deploy-recorded",
      "incidents.opened",
      "governance.proposal-created",
      "incidents.transitioned",
      "governance.proposal-approved",
      "governance.action-completed",
      "incidents.transitioned",
      "incidents.transitioned",
    ]);
    expect(timeline?.entries[0]?.summary).toBe("on-deployed r1 (argocd)");
    expect(await readIncidentTimeline(pool, "INC-NONE", 0, at(60))).toBeNull();
  });
});

describe("history indexes", () => {
  it("serve the evaluation and deploy queries by the time each event describes", async () => {
    const plans = await withTransaction(pool, async (client) => {
      await client.query("SET LOCAL enable_seqscan = off");
      const explain = async (sql: string) =>
        (await query<{ "QUERY PLAN": string }>(client, `EXPLAIN ${sql}`))
          .map((r) => r["QUERY PLAN"])
          .join("\n");
      return [
        await explain(`SELECT 1 FROM audit_log WHERE type = 'budget.evaluated' AND service = 'checkout'
          AND safedeploy_instant(payload -> 'data' ->> 'evaluatedAt') >= now() - interval '1 day'`),
        await explain(`SELECT 1 FROM audit_log WHERE type = ANY(ARRAY['governance.deploy-recorded'])
          AND safedeploy_instant(payload -> 'data' ->> 'at') >= now() - interval '1 day'`),
      ];
    });
    expect(plans[0]).toContain("audit_log_service_evaluation_history_idx");
    expect(plans[1]).toContain("audit_log_deploy_history_idx");
  });
});
