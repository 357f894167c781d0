import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendBatch, migrateAudit } from "@safedeploy/audit";
import { createPool, query } from "@safedeploy/db";
import { runCli } from "@safedeploy/cli";
import { acknowledgedThrough, consumeRaw, provision } from "@safedeploy/jetstream";
import { AUDIT_CONSUMERS } from "@safedeploy/schema";
import { createTestBus, createTestDatabase, testServiceEnv, waitUntil } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import { byStream, incidentStory } from "../../audit/test/fixtures.js";

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
let out: string;

async function run(argv: string[], env: Record<string, string> = { DATABASE_URL: database.url }) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    cwd: out,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 2 });
  await migrateAudit(pool);
  for (const [stream, messages] of byStream(incidentStory("checkout", "INC-7", "PRP-7"))) {
    await appendBatch(pool, stream, messages);
  }
  out = await mkdtemp(join(tmpdir(), "sd-evidence-"));
});

afterAll(async () => {
  await pool.end();
  await database.drop();
  await rm(out, { recursive: true, force: true });
});

describe("safedeploy evidence export", () => {
  it("writes the six files, each item with its message id and audit hash", async () => {
    const result = await run(["evidence", "export", "INC-7", "--out", "bundle"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const dir = join(out, "bundle", "incident-INC-7");
    expect((await readdir(dir)).sort()).toEqual([
      "approval.json",
      "budget.json",
      "decision.json",
      "proposal.json",
      "resolution.json",
      "slo.json",
    ]);
    for (const name of await readdir(dir)) {
      const file = JSON.parse(await readFile(join(dir, name), "utf8")) as {
        items: unknown[];
        sources: { messageId: string; hash: string; stream: string; seq: number }[];
      };
      expect(file.items.length, name).toBeGreaterThan(0);
      expect(file.sources).toHaveLength(file.items.length);
      for (const source of file.sources) {
        expect(source.messageId).toMatch(/\S/);
        expect(source.hash).toMatch(/^[0-9a-f]{64}$/);
      }
    }
  });

  it("exits 1 for an unknown incident and 2 without --out or DATABASE_URL", async () => {
    expect(await run(["evidence", "export", "INC-404", "--out", "x"])).toMatchObject({
      code: 1,
      stderr: "safedeploy evidence: no incident INC-404 in the audit log\n",
    });
    expect((await run(["evidence", "export", "INC-7"])).code).toBe(2);
    const noDb = await run(["evidence", "export", "INC-7", "--out", "x"], {});
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain("DATABASE_URL");
  });
});

describe("safedeploy audit verify", () => {
  it("exits 0 while the chain is intact", async () => {
    const result = await run(["audit", "verify"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^audit log intact: 11 rows/);
    const json = await run(["audit", "verify", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      intact: true,
      rows: 11,
      firstBad: null,
      anchored: [],
    });
  });

  it("with NATS_URL, checks each stream's tail against what the audit durable acknowledged", async () => {
    const harness = await createTestBus();
    try {
      await provision(harness.bus);
      const env = { DATABASE_URL: database.url, ...testServiceEnv(harness) };
      const intact = await run(["audit", "verify"], env);
      expect(intact.code).toBe(0);
      expect(intact.stdout).toMatch(/tails of .*INCIDENTS.* checked against JetStream/);

      // JetStream says the audit service stored one INCIDENTS message more than the log holds.
      const [held] = await query<{ last: string }>(
        pool,
        "SELECT max(seq) AS last FROM audit_log WHERE stream = 'INCIDENTS'",
      );
      const vouched = Number(held?.last) + 1;
      for (let i = 0; i < vouched; i++) {
        await harness.bus.js.publish(`${harness.bus.ns.root}.incidents.opened.x`, "{}");
      }
      const consumer = AUDIT_CONSUMERS.find((c) => c.stream === "INCIDENTS")!;
      const acking = consumeRaw(harness.bus, { consumer, handler: () => Promise.resolve() });
      try {
        await waitUntil(
          async () => (await acknowledgedThrough(harness.bus, consumer)) === vouched,
          10_000,
          () => "the stand-in audit consumer did not ack",
        );
      } finally {
        await acking.stop();
      }
      const cut = await run(["audit", "verify"], env);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toContain(
        `audit log BROKEN at stream INCIDENTS seq ${vouched} position ${vouched}: truncated`,
      );
      expect((await run(["audit", "verify", "--no-anchor"], env)).code).toBe(0);
      const unreachable = await run(["audit", "verify", "--anchor"], {
        DATABASE_URL: database.url,
        NATS_URL: "nats://127.0.0.1:1",
      });
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr).toMatch(/cannot anchor the audit log's tail: NATS unreachable/);
    } finally {
      await harness.cleanup();
    }
  });

  it("exits 1 naming the edited row, and 2 on a usage error", async () => {
    await query(pool, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
    await query(
      pool,
      `UPDATE audit_log SET payload = jsonb_set(payload, '{data,reason}', '"all fine"')
       WHERE type = 'incidents.opened'`,
    );
    await query(pool, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
    const [row] = await query<{ seq: string; position: string }>(
      pool,
      "SELECT seq, position FROM audit_log WHERE type = 'incidents.opened'",
    );
    const result = await run(["audit", "verify"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `audit log BROKEN at stream INCIDENTS seq ${row?.seq} position ${row?.position}: edited`,
    );
    const json = JSON.parse((await run(["audit", "verify", "--json"])).stdout) as unknown;
    expect(json).toMatchObject({
      intact: false,
      firstBad: { stream: "INCIDENTS", seq: Number(row?.seq), problem: "edited" },
    });
    expect((await run(["audit", "check"])).code).toBe(2);
    expect((await run(["audit", "verify"], {})).code).toBe(2);
  });
});
