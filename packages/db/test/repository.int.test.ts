import type { Pool } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, migrate, query, withTransaction } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";

// The store pattern the README describes, exercised end to end.

interface Approval {
  readonly proposalId: string;
  readonly by: string;
  readonly at: Date;
  readonly reason: string;
}

function parseApproval(row: unknown): Approval {
  const { proposal_id, by, at, reason } = row as Record<string, unknown>;
  if (typeof proposal_id !== "string" || typeof by !== "string" || !(at instanceof Date)) {
    throw new TypeError(`not an approval row: ${JSON.stringify(row)}`);
  }
  return { proposalId: proposal_id, by, at, reason: typeof reason === "string" ? reason : "" };
}

const approvals = {
  /** Idempotent on (proposal, approver): true when this call recorded it. */
  async record(db: Queryable, approval: Approval): Promise<boolean> {
    const inserted = await query<{ proposal_id: string }>(
      db,
      `INSERT INTO approvals (proposal_id, by, at, reason) VALUES ($1, $2, $3, $4)
       ON CONFLICT (proposal_id, by) DO NOTHING RETURNING proposal_id`,
      [approval.proposalId, approval.by, approval.at, approval.reason],
    );
    return inserted.length === 1;
  },
  async forProposal(db: Queryable, proposalId: string): Promise<Approval[]> {
    return query(
      db,
      "SELECT proposal_id, by, at, reason FROM approvals WHERE proposal_id = $1 ORDER BY at, by",
      [proposalId],
      parseApproval,
    );
  },
};

let database: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 2 });
  await migrate(pool, [
    {
      id: "0001",
      name: "approvals",
      sql: `CREATE TABLE approvals (
              proposal_id text NOT NULL, by text NOT NULL, at timestamptz NOT NULL, reason text NOT NULL,
              PRIMARY KEY (proposal_id, by))`,
    },
  ]);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

describe("a repository of plain functions over Queryable", () => {
  const at = new Date("2026-01-02T03:04:05.000Z");

  it("runs on the pool, idempotently", async () => {
    const approval = { proposalId: "PRP-1", by: "ana", at, reason: "looks right" };
    expect(await approvals.record(pool, approval)).toBe(true);
    expect(await approvals.record(pool, approval)).toBe(false);
    expect(await approvals.forProposal(pool, "PRP-1")).toEqual([approval]);
  });

  it("runs inside a transaction, whose rollback takes its writes along", async () => {
    await expect(
      withTransaction(pool, async (client) => {
        await approvals.record(client, { proposalId: "PRP-2", by: "ana", at, reason: "" });
        expect(await approvals.forProposal(client, "PRP-2")).toHaveLength(1);
        throw new Error("the proposal was superseded meanwhile");
      }),
    ).rejects.toThrow(/superseded/);
    expect(await approvals.forProposal(pool, "PRP-2")).toEqual([]);
  });
});
