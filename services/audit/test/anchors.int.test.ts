import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENESIS_HASH, chainHash, verifyChain } from "@safedeploy/audit";
import type { ChainedFields, HashVersion } from "@safedeploy/audit";
import { createPool, query } from "@safedeploy/db";
import { auditAnchors, provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createTestBus, createTestDatabase, testServiceEnv } from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import { runCli } from "../../../packages/cli/src/index.js";
import { asRole, initRoles } from "../../../packages/audit/test/roles.js";
import { auditService } from "../src/service.js";

let harness: TestBus;
let database: TestDatabase;
/** The superuser: the attacker with DBA rights. */
let admin: ReturnType<typeof createPool>;
let service: ServiceHandle | undefined;

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function auditVerify(): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv: ["audit", "verify"],
    // The CLI reads the log as the read-only gateway role.
    env: { ...testServiceEnv(harness), DATABASE_URL: asRole(database, "safedeploy_gateway") },
    cwd: process.cwd(),
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

interface Row {
  seq: string;
  position: string;
  subject: string;
  message_id: string | null;
  type: string | null;
  service: string | null;
  headers: unknown;
  payload: unknown;
  stored_at: Date;
  hash_version: number;
}

/**
 * What an attacker with DBA rights and the source code does: edits one row of `stream` and
 * recomputes every hash from genesis, so the chain alone is valid again.
 */
async function rewriteWithRecomputedHashes(stream: string, editSeq: number): Promise<void> {
  const rows = await query<Row>(
    admin,
    `SELECT seq, position, subject, message_id, type, service, headers, payload, stored_at,
            hash_version FROM audit_log WHERE stream = $1 ORDER BY position`,
    [stream],
  );
  await query(admin, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
  try {
    let prevHash = GENESIS_HASH;
    for (const row of rows) {
      const payload = Number(row.seq) === editSeq ? { forged: "nothing happened" } : row.payload;
      const fields: ChainedFields = {
        stream,
        seq: Number(row.seq),
        position: Number(row.position),
        subject: row.subject,
        messageId: row.message_id,
        type: row.type,
        service: row.service,
        headers: row.headers,
        payload,
        storedAt: row.stored_at.toISOString(),
        hashVersion: row.hash_version as HashVersion,
      };
      const hash = chainHash(prevHash, fields);
      await query(
        admin,
        "UPDATE audit_log SET payload = $3, prev_hash = $4, hash = $5 WHERE stream = $1 AND seq = $2",
        [stream, row.seq, JSON.stringify(payload), prevHash, hash],
      );
      prevHash = hash;
    }
  } finally {
    await query(admin, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
  }
}

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  database = await createTestDatabase();
  await initRoles(database);
  admin = createPool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await service?.shutdown("test");
  await admin.end();
  await harness.cleanup();
  await database.drop();
});

describe("audit chain heads anchored in JetStream KV", () => {
  it("with separate roles, anchors each batch's head; a rewrite with recomputed hashes is reported", async () => {
    service = await startService(
      auditService({
        maxBatch: 7,
        lingerMs: 10,
        backoffMs: [100],
        migratorUrl: asRole(database, "safedeploy_migrator"),
      }),
      {
        env: testServiceEnv(harness, {
          DATABASE_URL: asRole(database, "safedeploy_audit"),
          LOG_LEVEL: "silent",
        }),
      },
    );
    let last = 0;
    for (let n = 1; n <= 40; n++) {
      const subject = `${harness.bus.ns.root}.governance.verdict.svc-${n % 4}`;
      last = (await harness.bus.js.publish(subject, JSON.stringify({ n }))).seq;
    }
    let anchors: Awaited<ReturnType<typeof auditAnchors>> = [];
    await eventually(
      async () => {
        anchors = await auditAnchors(harness.bus);
        return anchors.find((a) => a.stream === "GOVERNANCE")?.head?.seq === last;
      },
      30_000,
      "the GOVERNANCE head to be anchored",
    );
    const head = anchors.find((a) => a.stream === "GOVERNANCE")?.head;
    const [stored] = await query<{ hash: string; position: string }>(
      admin,
      "SELECT hash, position FROM audit_log WHERE stream = 'GOVERNANCE' AND seq = $1",
      [last],
    );
    expect(head).toEqual({ position: Number(stored?.position), seq: last, hash: stored?.hash });
    expect(await verifyChain(admin, { anchors })).toMatchObject({ intact: true });
    const intact = await auditVerify();
    expect(intact).toMatchObject({ code: 0, stderr: "" });
    expect(intact.stdout).toMatch(/heads of GOVERNANCE match their anchored hashes/);

    await rewriteWithRecomputedHashes("GOVERNANCE", last - 20);
    // The chain alone is valid again: only the anchor outside PostgreSQL shows the rewrite.
    expect(await verifyChain(admin)).toMatchObject({ intact: true });
    const report = await verifyChain(admin, { anchors });
    expect(report.firstBad).toMatchObject({
      stream: "GOVERNANCE",
      seq: last,
      position: head?.position,
      problem: "edited",
    });
    expect(report.firstBad?.detail).toContain("rewritten with recomputed hashes");
    const broken = await auditVerify();
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^audit log BROKEN at stream GOVERNANCE seq \d+ position \d+: edited \(JetStream anchored position/,
    );
  }, 60_000);
});
