import { afterAll, beforeAll, expect, it } from "vitest";
import { createPool } from "@safedeploy/db";
import { messageId } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import { appendBatch, getProposal, migrateAudit } from "../src/index.js";
import type { AuditPool } from "../src/index.js";
import { asMessages, envelope, incidentStory, streamOf } from "./fixtures.js";

let database: TestDatabase;
let pool: AuditPool;
let seq = 1;

async function store(...events: Envelope[]) {
  for (const e of events) await appendBatch(pool, streamOf(e), asMessages([e], seq++));
}

const completed = (proposal: string, minutes: number, dryRun: boolean) =>
  envelope(
    "governance.action-completed",
    messageId("governance.action-completed", proposal, ...(dryRun ? ["dry-run"] : [])),
    "checkout",
    {
      proposalId: proposal,
      incidentId: "INC-D",
      kind: "rollback-rollout",
      at: new Date(Date.UTC(2026, 10, 24, 9, minutes)).toISOString(),
      branch: dryRun ? "" : `safedeploy/${proposal}`,
      commit: dryRun ? "" : "0123456789abcdef0123456789abcdef01234567",
      prUrl: null,
      diff: dryRun ? "--- preview\n" : "--- real\n",
      dryRun,
    },
    minutes,
  );

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ connectionString: database.url, max: 2 });
  await migrateAudit(pool);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

it("a dry run's result never marks a proposal executed nor replaces the real action", async () => {
  // The story up to the approval (the real action-completed and later events left out).
  const story = incidentStory("checkout", "INC-D", "PRP-D");
  const upToApproval = story.slice(
    0,
    story.findIndex((e) => e.type === "governance.action-completed"),
  );
  await store(...upToApproval);
  await store(completed("PRP-D", 5, true));
  expect(await getProposal(pool, "PRP-D")).toMatchObject({
    state: "approved",
    action: null,
    preview: { diff: "--- preview\n", error: null },
  });
  await store(completed("PRP-D", 6, false));
  expect(await getProposal(pool, "PRP-D")).toMatchObject({
    state: "executed",
    action: { branch: "safedeploy/PRP-D", diff: "--- real\n" },
    preview: null,
  });
  // A dry run that arrives late changes nothing.
  await store(completed("PRP-D", 7, true));
  expect(await getProposal(pool, "PRP-D")).toMatchObject({
    state: "executed",
    action: { diff: "--- real\n" },
  });
});

it("a preview that found the change ambiguous is shown, and the proposal stays pending", async () => {
  const story = incidentStory("payments", "INC-E", "PRP-E");
  await store(...story.filter((e) => e.type === "governance.proposal-created"));
  await store(
    envelope(
      "governance.action-failed",
      messageId("governance.action-failed", "PRP-E", "dry-run"),
      "payments",
      {
        proposalId: "PRP-E",
        at: new Date(Date.UTC(2026, 10, 24, 9, 3)).toISOString(),
        reason: "no commit changed envs/prod/payments",
        needsTriage: true,
        state: "needs-triage",
        dryRun: true,
      },
      3,
    ),
  );
  expect(await getProposal(pool, "PRP-E")).toMatchObject({
    state: "pending",
    action: null,
    failure: null,
    preview: { diff: "", error: "no commit changed envs/prod/payments" },
  });
});
