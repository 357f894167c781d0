import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, query } from "@safedeploy/db";
import { IncidentView, ProposalView, messageId } from "@safedeploy/schema";
import { createTestDatabase, incidentOpenedEvent } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import {
  appendBatch,
  evidenceBundle,
  getIncident,
  getProposal,
  listFreezes,
  listIncidents,
  listProposals,
  listServices,
  migrateAudit,
  snapshot,
  verifyChain,
} from "../src/index.js";
import type { AuditMessage, AuditPool, EVIDENCE_PARTS } from "../src/index.js";
import { asMessages, at, byStream, envelope, incidentStory } from "./fixtures.js";

let database: TestDatabase;
let pool: AuditPool;

function rawMessages(count: number, firstSeq = 1): AuditMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: firstSeq + i,
    subject: `sd.dlq.metrics.svc-${i % 7}`,
    headers: { "Sd-Dlq-Reason": [`reason ${i}`] },
    data: JSON.stringify({ reason: "invalid", n: firstSeq + i, nested: { b: 1, a: [1.5, "x"] } }),
    time: new Date(Date.UTC(2026, 10, 24) + (firstSeq + i) * 1_000).toISOString(),
  }));
}

async function positions(stream: string): Promise<{ seq: number; position: number }[]> {
  const rows = await query<{ seq: string; position: string }>(
    pool,
    "SELECT seq, position FROM audit_log WHERE stream = $1 ORDER BY position",
    [stream],
  );
  return rows.map((row) => ({ seq: Number(row.seq), position: Number(row.position) }));
}

/** Runs SQL as the superuser with the append-only triggers off, as an attacker with DBA rights. */
async function tamper(sql: string, params: readonly unknown[] = []): Promise<void> {
  await query(pool, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
  try {
    await query(pool, sql, params);
  } finally {
    await query(pool, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 6 });
  // Three replicas starting at once: one applies, the others wait and find everything applied.
  const reports = await Promise.all([1, 2, 3].map(() => migrateAudit(pool)));
  expect(reports.flatMap((r) => r.applied).sort()).toEqual([
    "0001_audit_log",
    "0002_read_model",
    "0003_read_model_keysets",
    "0004_fail_closed",
    "0005_hash_every_column",
    "0006_history_indexes",
    "0007_service_wide_evaluations",
  ]);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

describe("audit log", () => {
  it("stores each sequence once in one contiguous chain while three writers append at once", async () => {
    const all = rawMessages(3_000);
    // Each "replica" gets overlapping, shuffled slices, so redeliveries race first deliveries.
    const replicas = [0, 1, 2].map((r) => ({
      slice: all.filter((_, i) => i % 3 === r || i % 11 === r).sort(() => Math.random() - 0.5),
      pool: createPool({ connectionString: database.url, max: 2 }),
    }));
    const started = performance.now();
    try {
      await Promise.all(
        replicas.map(async ({ slice, pool: own }) => {
          for (let i = 0; i < slice.length; i += 250) {
            await appendBatch(own, "RACE", slice.slice(i, i + 250));
          }
        }),
      );
    } finally {
      await Promise.all(replicas.map(({ pool: own }) => own.end()));
    }
    const elapsed = performance.now() - started;
    const rows = await positions("RACE");
    expect(rows).toHaveLength(3_000);
    expect(rows.map((r) => r.position)).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.seq)).size).toBe(3_000);
    expect(await verifyChain(pool, { stream: "RACE" })).toEqual({
      intact: true,
      rows: 3_000,
      firstBad: null,
      anchored: [],
    });
    // A full redelivery stores nothing.
    const again = await appendBatch(pool, "RACE", all.slice(0, 500));
    expect(again).toMatchObject({ stored: 0, skipped: 500 });
    process.stdout.write(
      `3 writers: ${Math.round(3_000 / (elapsed / 1_000))} rows/s (with duplicates)\n`,
    );
  });

  it("appends at a measured rate from one writer", async () => {
    const all = rawMessages(5_000, 1);
    const started = performance.now();
    for (let i = 0; i < all.length; i += 500)
      await appendBatch(pool, "RATE", all.slice(i, i + 500));
    const perSecond = Math.round(5_000 / ((performance.now() - started) / 1_000));
    process.stdout.write(`one writer, batches of 500: ${perSecond} rows/s\n`);
    expect((await verifyChain(pool, { stream: "RATE" })).intact).toBe(true);
  });

  it("stores a payload that is not JSON as a JSON string", async () => {
    await appendBatch(pool, "ODD", [
      { seq: 1, subject: "sd.dlq.x.a", headers: {}, data: "not json {", time: at(0) },
      {
        seq: 2,
        subject: "sd.dlq.x.a",
        headers: {},
        data: new Uint8Array([0xff, 0xfe]),
        time: at(0),
      },
    ]);
    const rows = await query<{ payload: unknown }>(
      pool,
      "SELECT payload FROM audit_log WHERE stream = 'ODD' ORDER BY seq",
    );
    expect(rows.map((r) => r.payload)).toEqual(["not json {", "base64://4="]);
    expect((await verifyChain(pool, { stream: "ODD" })).intact).toBe(true);
  });

  it("stores JSON that holds an escaped NUL, which jsonb refuses, instead of failing forever", async () => {
    // Anyone may publish to DEADLETTER: one such message must not stall the stream's audit log.
    const hostile = String.raw`{"id":"x","note":"a\u0000b"}`;
    await appendBatch(pool, "NUL", [
      { seq: 1, subject: "sd.dlq.x.a", headers: {}, data: hostile, time: at(0) },
      {
        seq: 2,
        subject: "sd.dlq.x.a",
        headers: { "X-Odd": ["a\u0000b"], "X-Fine": ["ok"] },
        data: "{}",
        time: at(0),
      },
    ]);
    const rows = await query<{ payload: unknown; headers: unknown }>(
      pool,
      "SELECT payload, headers FROM audit_log WHERE stream = 'NUL' ORDER BY seq",
    );
    expect(rows[0]?.payload).toBe(`base64:${Buffer.from(hostile).toString("base64")}`);
    expect(rows[1]?.payload).toEqual({});
    expect(rows[1]?.headers).toEqual({
      "X-Odd": [`base64:${Buffer.from("a\u0000b").toString("base64")}`],
      "X-Fine": ["ok"],
    });
    expect((await verifyChain(pool, { stream: "NUL" })).intact).toBe(true);
    // A lone surrogate (escaped in JSON, and in a text payload) is refused by jsonb too.
    await appendBatch(pool, "NUL", [
      { seq: 3, subject: "sd.dlq.x.a", headers: {}, data: String.raw`{"a":"\ud800"}`, time: at(0) },
      { seq: 4, subject: "sd.dlq.x.a", headers: {}, data: "\ud800 text", time: at(0) },
    ]);
    const later = await query<{ payload: unknown }>(
      pool,
      "SELECT payload FROM audit_log WHERE stream = 'NUL' AND seq > 2 ORDER BY seq",
    );
    expect(later.map((row) => String(row.payload).slice(0, 7))).toEqual(["base64:", "base64:"]);
    expect((await verifyChain(pool, { stream: "NUL" })).intact).toBe(true);
  });

  it("refuses UPDATE, DELETE and TRUNCATE", async () => {
    await appendBatch(pool, "LOCKED", rawMessages(3));
    await expect(
      query(pool, "UPDATE audit_log SET subject = 'x' WHERE stream = 'LOCKED'"),
    ).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(query(pool, "DELETE FROM audit_log WHERE stream = 'LOCKED'")).rejects.toThrow(
      /append-only: DELETE refused/,
    );
    await expect(query(pool, "TRUNCATE audit_log")).rejects.toThrow(
      /append-only: TRUNCATE refused/,
    );
    expect(await positions("LOCKED")).toHaveLength(3);
  });
});

describe("verifyChain names the first bad row", () => {
  it("an edited payload", async () => {
    await appendBatch(pool, "EDIT", rawMessages(20));
    await tamper(
      `UPDATE audit_log SET payload = jsonb_set(payload, '{reason}', '"nothing happened"')
       WHERE stream = 'EDIT' AND seq IN (7, 12)`,
    );
    const report = await verifyChain(pool, { stream: "EDIT" });
    expect(report.intact).toBe(false);
    expect(report.firstBad).toMatchObject({
      stream: "EDIT",
      seq: 7,
      position: 7,
      problem: "edited",
    });
  });

  it("an edited row whose hash was recomputed", async () => {
    await appendBatch(pool, "REHASH", rawMessages(10));
    await tamper("UPDATE audit_log SET hash = repeat('a', 64) WHERE stream = 'REHASH' AND seq = 4");
    const report = await verifyChain(pool, { stream: "REHASH" });
    expect(report.firstBad).toMatchObject({ seq: 4, position: 4, problem: "edited" });
  });

  it("a deleted row", async () => {
    await appendBatch(pool, "GONE", rawMessages(20));
    await tamper("DELETE FROM audit_log WHERE stream = 'GONE' AND seq = 9");
    const report = await verifyChain(pool, { stream: "GONE" });
    expect(report.firstBad).toMatchObject({ seq: 10, position: 10, problem: "missing" });
    expect(report.firstBad?.detail).toContain("position 9 is missing");
  });

  it("a cut-off tail, only against an anchor", async () => {
    await appendBatch(pool, "TAIL", rawMessages(10));
    await tamper("DELETE FROM audit_log WHERE stream = 'TAIL' AND seq IN (9, 10)");
    // The shorter chain is valid in itself.
    expect(await verifyChain(pool, { stream: "TAIL" })).toMatchObject({
      intact: true,
      anchored: [],
    });
    const report = await verifyChain(pool, {
      stream: "TAIL",
      anchors: [
        { stream: "TAIL", storedThrough: 10 },
        { stream: "OTHER", storedThrough: 99 },
      ],
    });
    expect(report).toMatchObject({ intact: false, anchored: ["TAIL"] });
    expect(report.firstBad).toEqual({
      stream: "TAIL",
      seq: 10,
      position: 9,
      problem: "truncated",
      detail:
        "the audit consumer acknowledged seq 10 as stored, but the log ends at seq 8 (position 8)",
    });
    const vouched = { stream: "TAIL", storedThrough: 8 };
    expect(await verifyChain(pool, { stream: "TAIL", anchors: [vouched] })).toMatchObject({
      intact: true,
      anchored: ["TAIL"],
    });
    // A stream whose every row is gone is known from its anchor alone.
    const empty = await verifyChain(pool, {
      stream: "VANISHED",
      anchors: [{ stream: "VANISHED", storedThrough: 3 }],
    });
    expect(empty.firstBad).toMatchObject({ stream: "VANISHED", problem: "truncated" });
    expect(empty.firstBad?.detail).toContain("the log holds no row of this stream");
  });

  it("two rows whose positions were swapped", async () => {
    await appendBatch(pool, "SWAP", rawMessages(20));
    await tamper(`UPDATE audit_log SET position = 1000000 WHERE stream = 'SWAP' AND position = 5`);
    await tamper(`UPDATE audit_log SET position = 5 WHERE stream = 'SWAP' AND position = 6`);
    await tamper(`UPDATE audit_log SET position = 6 WHERE stream = 'SWAP' AND position = 1000000`);
    const report = await verifyChain(pool, { stream: "SWAP" });
    expect(report.firstBad).toMatchObject({ seq: 6, position: 5, problem: "reordered" });
    expect(report.firstBad?.detail).toContain("chained at position 6");
  });
});

describe("read model", () => {
  const story = incidentStory("checkout", "INC-1", "PRP-1");

  it("projects an incident's life into IncidentView and ProposalView, in any arrival order", async () => {
    for (const [stream, messages] of byStream(story)) {
      // Out of order: the last half first, as a second replica might commit it.
      const half = Math.floor(messages.length / 2);
      await appendBatch(pool, stream, messages.slice(half));
      await appendBatch(pool, stream, messages.slice(0, half));
      await appendBatch(pool, stream, messages); // redelivered in full: nothing changes
    }
    const incident = await getIncident(pool, "INC-1");
    expect(IncidentView.parse(incident)).toEqual({
      id: "INC-1",
      service: "checkout",
      state: "resolved",
      severity: "fast-burn",
      class: "P1",
      openedAt: at(1),
      updatedAt: at(30),
      transitions: [
        {
          from: null,
          to: "detected",
          at: at(1),
          actor: "system",
          reason: "availability is fast-burn",
        },
        {
          from: "detected",
          to: "investigating",
          at: at(3),
          actor: "alice",
          reason: "to investigating",
        },
        {
          from: "investigating",
          to: "mitigated",
          at: at(7),
          actor: "system",
          reason: "to mitigated",
        },
        { from: "mitigated", to: "resolved", at: at(30), actor: "system", reason: "to resolved" },
      ],
    });
    const proposal = await getProposal(pool, "PRP-1");
    expect(ProposalView.parse(proposal)).toEqual({
      id: "PRP-1",
      service: "checkout",
      incidentId: "INC-1",
      kind: "rollback-rollout",
      state: "executed",
      createdAt: at(2),
      approvals: [{ by: "alice", at: at(4), reason: "looks right" }],
      action: {
        branch: "safedeploy/PRP-1",
        commit: "0123456789abcdef0123456789abcdef01234567",
        prUrl: "https://github.example/org/env/pull/7",
        diff: "--- a\n+++ b\n",
      },
      preview: null,
    });
    expect(await listIncidents(pool, { service: "checkout", state: "resolved" })).toHaveLength(1);
    expect(await listProposals(pool, { state: "executed" })).toHaveLength(1);
    const [service] = await listServices(pool);
    expect(service).toMatchObject({
      name: "checkout",
      severity: "fast-burn",
      budgetRemaining: 0.4,
      activeIncident: null,
    });
    expect(service?.slos[0]?.evaluatedAt).toBe(at(5));
    for (const [stream] of byStream(story))
      expect((await verifyChain(pool, { stream })).intact).toBe(true);
  });

  it("keeps one active incident per service: the partial unique index refuses a second", async () => {
    const first = incidentOpenedEvent("payments", "INC-2", at(40), { causeId: "eval:x" });
    const second = envelope(
      "incidents.opened",
      messageId("incidents.opened", "INC-3"),
      "payments",
      { ...first.data, incidentId: "INC-3", openedAt: at(41) },
      41,
    );
    const seqBase = 1_000;
    await appendBatch(pool, "INCIDENTS", asMessages([first], seqBase));
    const report = await appendBatch(pool, "INCIDENTS", asMessages([second], seqBase + 1));
    // The event is in the audit log; the read model refused it, and the index is what refused.
    expect(report).toMatchObject({
      stored: 1,
      refused: [{ messageId: second.id, constraint: "incidents_one_active_per_service" }],
    });
    await expect(
      query(
        pool,
        `INSERT INTO incidents (id, service, state, severity, class, opened_at, updated_at, cause_id, reason, message_id)
         VALUES ('INC-X', 'payments', 'investigating', 'fast-burn', 'P1', now(), now(), 'c', 'r', 'm')`,
      ),
    ).rejects.toMatchObject({ code: "23505", constraint: "incidents_one_active_per_service" });
    expect((await listIncidents(pool, { service: "payments" })).map((i) => i.id)).toEqual([
      "INC-2",
    ]);
    expect(await getIncident(pool, "INC-3")).toBeNull();

    // INC-2's resolution was stored after INC-3's opening (replicas commit in any order): once
    // INC-2 is closed, the opening the index refused takes its place in the read model.
    const resolved = envelope(
      "incidents.transitioned",
      messageId("incidents.transitioned", "INC-2", "resolved"),
      "payments",
      {
        incidentId: "INC-2",
        from: "detected",
        to: "resolved",
        at: at(40.5),
        actor: "ana",
        reason: "fixed",
      },
      40,
    );
    await appendBatch(pool, "INCIDENTS", asMessages([resolved], seqBase + 2));
    expect(await getIncident(pool, "INC-2")).toMatchObject({ state: "resolved" });
    expect(await getIncident(pool, "INC-3")).toMatchObject({
      state: "detected",
      service: "payments",
    });
  });

  it("stores a dead letter or a misplaced envelope but never projects it", async () => {
    const forged = incidentOpenedEvent("ledger", "INC-FORGED", at(50), { causeId: "eval:y" });
    const [onItsSubject] = asMessages([forged], 2_000);
    if (onItsSubject === undefined) throw new Error("no message");
    // Anyone may publish to the dead-letter stream; a service user may write on its own subjects.
    const asDeadLetter = { ...onItsSubject, subject: "sd.dlq.incidents.ledger" };
    const onAnotherSubject = { ...onItsSubject, seq: 2_001, subject: "sd.incidents.opened.other" };
    const wrongType = { ...onItsSubject, seq: 2_002, subject: "sd.incidents.transitioned.ledger" };
    expect(await appendBatch(pool, "DEADLETTER", [asDeadLetter])).toMatchObject({ stored: 1 });
    expect(await appendBatch(pool, "INCIDENTS", [onAnotherSubject, wrongType])).toMatchObject({
      stored: 2,
      refused: [],
    });
    const stored = await query<{ n: string }>(
      pool,
      "SELECT count(*) AS n FROM audit_log WHERE message_id = $1",
      [forged.id],
    );
    expect(Number(stored[0]?.n)).toBe(3);
    expect(await getIncident(pool, "INC-FORGED")).toBeNull();
    expect(await listIncidents(pool, { service: "ledger" })).toEqual([]);

    // The same envelope on the stream and subject it belongs to is projected.
    await appendBatch(pool, "INCIDENTS", asMessages([forged], 2_003));
    expect(await getIncident(pool, "INC-FORGED")).toMatchObject({ service: "ledger" });
    const closed = envelope(
      "incidents.transitioned",
      messageId("incidents.transitioned", "INC-FORGED", "resolved"),
      "ledger",
      {
        incidentId: "INC-FORGED",
        from: "detected",
        to: "resolved",
        at: at(51),
        actor: "ana",
        reason: "test",
      },
      51,
    );
    await appendBatch(pool, "INCIDENTS", asMessages([closed], 2_004));
  });

  it("records freezes and verdicts for the snapshot", async () => {
    const opened = envelope(
      "governance.freeze-opened",
      "freeze:checkout:1",
      "checkout",
      {
        freezeId: "FRZ-1",
        from: at(0),
        until: at(600),
        reason: "budget exhausted",
        actor: "system",
        origin: "exhaustion",
      },
      0,
    );
    const verdict = envelope(
      "governance.verdict",
      "verdict:checkout:1",
      "checkout",
      {
        allowed: false,
        verdict: "block",
        reasons: [{ code: "frozen", message: "frozen", value: null, threshold: null }],
        evaluatedAt: at(1),
        causeId: "eval:1",
        evidenceAge: null,
        evidence: [],
      },
      1,
    );
    await appendBatch(pool, "GOVERNANCE", asMessages([opened, verdict], 500));
    expect(await listFreezes(pool, { activeAt: at(10) })).toMatchObject([
      { id: "FRZ-1", service: "checkout", until: at(600), liftedAt: null },
    ]);
    const snap = await snapshot(pool, { now: at(10) });
    expect(snap.blocked).toEqual(["checkout"]);
    expect(snap.freezes).toHaveLength(1);
    expect(snap.incidents.map((i) => i.id)).toEqual(["INC-3"]); // the active one of the test above
    const lifted = envelope(
      "governance.freeze-lifted",
      "freeze-lifted:checkout:1",
      "checkout",
      { freezeId: "FRZ-1", at: at(20), actor: "bob", reason: "fixed" },
      20,
    );
    await appendBatch(pool, "GOVERNANCE", asMessages([lifted], 502));
    expect(await listFreezes(pool, { activeAt: at(30) })).toEqual([]);
  });
});

describe("evidence bundle", () => {
  it("gathers decision, slo, budget, proposal, approval and resolution with their hashes", async () => {
    const bundle = await evidenceBundle(pool, "INC-1");
    expect(bundle).not.toBeNull();
    if (bundle === null) return;
    const types = (part: (typeof EVIDENCE_PARTS)[number]) =>
      bundle[part].sources.map((s) => s.type);
    expect(types("decision")).toEqual(["incidents.opened"]);
    expect(types("budget")).toEqual(["budget.evaluated", "budget.evaluated"]);
    expect(types("slo")).toEqual(["metrics.snapshot", "metrics.snapshot"]);
    expect(types("proposal")).toEqual(["governance.proposal-created"]);
    expect(types("approval")).toEqual(["governance.proposal-approved"]);
    expect(types("resolution")).toEqual([
      "incidents.transitioned",
      "incidents.transitioned",
      "incidents.transitioned",
      "governance.action-completed",
    ]);
    for (const source of bundle.decision.sources) {
      const [row] = await query<{ hash: string }>(
        pool,
        "SELECT hash FROM audit_log WHERE stream = $1 AND seq = $2",
        [source.stream, source.seq],
      );
      expect(row?.hash).toBe(source.hash);
      expect(source.messageId).toBe(messageId("incidents.opened", "INC-1"));
    }
    expect(await evidenceBundle(pool, "INC-404")).toBeNull();
  });
});
