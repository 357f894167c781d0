import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, query } from "@safedeploy/db";
import { messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import {
  budgetEvaluationEvent,
  createTestDatabase,
  gateReason,
  incidentOpenedEvent,
  verdictEvent,
} from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import {
  appendBatch,
  getService,
  listIncidents,
  listProposals,
  listServices,
  migrateAudit,
  snapshot,
} from "../src/index.js";
import type { AuditPool, KeysetPage } from "../src/index.js";
import { at, byStream, envelope } from "./fixtures.js";

let database: TestDatabase;
let pool: AuditPool;

// Names whose byte order differs from a linguistic collation's (which ignores dashes at first).
const SERVICES = ["a-c", "ab", "a0", "b", "b-a", "ba", "c", "c-1", "c0", "d"];
// Two incidents and two proposals share each millisecond; one time carries microseconds.
const opened = (i: number) =>
  i === 5
    ? at(Math.floor(i / 2))
        .replace("Z", "")
        .replace(/\.(\d{3})$/, ".$1400Z")
    : at(Math.floor(i / 2));

function story(): Envelope[] {
  const events: Envelope[] = [];
  SERVICES.forEach((service, i) => {
    events.push(
      budgetEvaluationEvent(service, at(0), "normal", { slo: "latency", budgetRemaining: 0.9 }),
    );
    events.push(
      budgetEvaluationEvent(service, at(0), i % 3 === 0 ? "fast-burn" : "normal", {
        slo: "availability",
        budgetRemaining: 0.5 - i / 100,
      }),
    );
    events.push(verdictEvent(service, at(1), i % 2 === 0 ? [] : [gateReason("burning")]));
    const incident = `INC-${String(9 - i)}`;
    events.push(
      incidentOpenedEvent(service, incident, opened(i), { causeId: "eval", reason: "burning" }),
    );
    const proposal = `PRP-${String(9 - i)}`;
    events.push(
      envelope(
        "governance.proposal-created",
        messageId("governance.proposal-created", proposal),
        service,
        {
          proposalId: proposal,
          kind: "rollback-rollout",
          incidentId: incident,
          causeId: "c",
          createdAt: opened(i),
          summary: `roll back ${service}`,
          plan: { action: "git-revert", path: service },
        },
        3,
      ),
    );
  });
  return events;
}

/** Every page of a list, `limit` at a time, each after the last key of the one before. */
async function pages<T>(
  fetch: (page: KeysetPage) => Promise<T[]>,
  keyOf: (item: T) => string[],
  limit: number,
): Promise<T[][]> {
  const all: T[][] = [];
  let after: string[] | undefined;
  for (;;) {
    const page = await fetch({ limit, ...(after === undefined ? {} : { after }) });
    if (page.length === 0) return all;
    expect(page.length).toBeLessThanOrEqual(limit);
    all.push(page);
    const last = page.at(-1);
    if (last === undefined) return all;
    after = keyOf(last);
  }
}

const newestFirst = (a: string[], b: string[]) =>
  a[0] === b[0] ? (a[1] ?? "").localeCompare(b[1] ?? "") : (b[0] ?? "") < (a[0] ?? "") ? -1 : 1;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 4 });
  await migrateAudit(pool);
  for (const [stream, messages] of byStream(story())) {
    const report = await appendBatch(pool, stream, messages);
    expect(report.refused).toEqual([]);
  }
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

describe("read model keyset pages", () => {
  it("pages services by name in byte order, each page read by key, the union the whole list", async () => {
    const all = await listServices(pool);
    expect(all.map((s) => s.name)).toEqual([...SERVICES].sort());
    for (const limit of [1, 3, 10]) {
      const found = await pages(
        (page) => listServices(pool, page),
        (s) => [s.name],
        limit,
      );
      expect(found.flat()).toEqual(all);
    }
    expect(await listServices(pool, { limit: 5, after: ["c-1"] })).toEqual(all.slice(8));
    expect(await listServices(pool, { limit: 5, after: ["zz"] })).toEqual([]);
  });

  it("reads one service by name as the list shows it, or null", async () => {
    const all = await listServices(pool);
    for (const service of all) expect(await getService(pool, service.name)).toEqual(service);
    const ab = await getService(pool, "ab");
    expect(ab).toMatchObject({
      name: "ab",
      severity: "normal",
      budgetRemaining: 0.49,
      activeIncident: "INC-8",
      gate: { allowed: false, reasons: [gateReason("burning")], evaluatedAt: at(1) },
    });
    expect(ab?.slos.map((s) => s.slo)).toEqual(["availability", "latency"]);
    expect(await getService(pool, "nope")).toBeNull();
  });

  it("pages incidents and proposals newest first, ties by id, across equal milliseconds", async () => {
    const incidents = await listIncidents(pool);
    const keys = incidents.map((i) => [i.openedAt, i.id]);
    expect(keys).toEqual([...keys].sort(newestFirst));
    // The time with microseconds is shown, ordered and paged at millisecond precision.
    expect(keys).toContainEqual([at(2), "INC-4"]);
    for (const limit of [1, 2, 3, 7]) {
      const found = await pages(
        (page) => listIncidents(pool, {}, page),
        (i) => [i.openedAt, i.id],
        limit,
      );
      expect(found.flat()).toEqual(incidents);
    }
    expect(
      (await listIncidents(pool, { state: "detected" }, { limit: 2, after: [at(2), "INC-4"] })).map(
        (i) => i.id,
      ),
    ).toEqual(["INC-5", "INC-6"]);

    const proposals = await listProposals(pool);
    expect(proposals.map((p) => p.id)).toEqual(incidents.map((i) => i.id.replace("INC", "PRP")));
    for (const limit of [1, 4]) {
      const found = await pages(
        (page) => listProposals(pool, { state: "pending" }, page),
        (p) => [p.createdAt, p.id],
        limit,
      );
      expect(found.flat()).toEqual(proposals);
    }
  });

  it("refuses a time key that is not an instant", async () => {
    await expect(listIncidents(pool, {}, { limit: 2, after: ["yesterday", "x"] })).rejects.toThrow(
      RangeError,
    );
    await expect(listProposals(pool, {}, { limit: 2, after: [at(1)] })).rejects.toThrow(RangeError);
  });

  it("serves pages and single services from the keyset indexes", async () => {
    await query(pool, "ANALYZE");
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SET LOCAL enable_seqscan = off");
      const plan = async (sql: string, params: unknown[]) =>
        (await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, params)).rows
          .map((row) => row["QUERY PLAN"])
          .join("\n");
      expect(
        await plan(
          `SELECT name FROM services WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT 3`,
          ["b"],
        ),
      ).toContain("services_name_keyset_idx");
      expect(
        await plan(
          `SELECT id FROM incidents
           ORDER BY date_trunc('milliseconds', opened_at AT TIME ZONE 'UTC') DESC, id COLLATE "C" LIMIT 3`,
          [],
        ),
      ).toContain("incidents_keyset_idx");
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
  });

  it("keeps the snapshot's shape: every service, active incidents, open proposals, blocked", async () => {
    const snap = await snapshot(pool, { now: at(10) });
    expect(snap.services).toEqual(await listServices(pool));
    expect(snap.incidents).toHaveLength(SERVICES.length);
    expect(snap.proposals).toHaveLength(SERVICES.length);
    expect(snap.blocked).toEqual(SERVICES.filter((_, i) => i % 2 === 1).sort());
  });
});
