import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKv, provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { EventData, EventType } from "@safedeploy/schema";
import {
  createTestBus,
  gateReason,
  readStream,
  testServiceEnv,
  verdictEvent,
  waitUntil,
} from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { proposalIdFor } from "../src/proposals.js";
import { proposalService } from "../src/service.js";
import { ProposalRecord } from "../src/store.js";

const catalog = new URL("../../../test/fixtures/catalog/governance", import.meta.url).pathname;
const at = (second: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, second)).toISOString();
let harness: TestBus;
let replicas: ServiceHandle[] = [];
let proposals: TypedKv<ProposalRecord>;

function event<T extends EventType>(type: T, service: string, id: string, data: EventData<T>) {
  return createEnvelope({ type, id, service, data }, { source: "test", time: at(0) });
}

/** Waits until both of the proposal service's consumers have settled everything published. */
async function settled() {
  const check = async (stream: string, durable: string) => {
    const info = await harness.bus.jsm.consumers.info(
      `${harness.bus.ns.prefix}${stream}`,
      `${harness.bus.ns.prefix}${durable}`,
    );
    return info.num_pending === 0 && info.num_ack_pending === 0;
  };
  await waitUntil(
    async () =>
      (await check("GOVERNANCE", "proposal-governance")) && (await check("INCIDENTS", "proposal")),
    10_000,
    () => "the proposal service did not settle",
  );
}

const state = async (id: string) => (await proposals.get(id))?.value.state;

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  const env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog });
  // Two replicas share the consumers: verdicts reach them in no particular order.
  replicas = [
    await startService(proposalService, { env }),
    await startService(proposalService, { env }),
  ];
  proposals = await openKv(harness.bus, "proposals", ProposalRecord);
});

afterAll(async () => {
  for (const replica of replicas) await replica.shutdown("test");
  await harness.cleanup();
});

describe("block-promotion", () => {
  const burn = {
    code: "burn-rate-high",
    message: "burn 16.2 > 1 over 1h",
    value: 16.2,
    threshold: 1,
  };

  it("a blocked verdict proposes pausing the Rollout; a newer one supersedes it; allowed supersedes the last", async () => {
    const first = verdictEvent("checkout", at(1), [burn]);
    await publishEvent(harness.bus, first);
    await publishEvent(harness.bus, first); // redelivered by a retrying producer (deduplicated)
    await settled();
    const firstId = proposalIdFor(`checkout:block-promotion:${first.id}`);
    expect((await proposals.get(firstId))?.value).toMatchObject({
      kind: "block-promotion",
      state: "pending",
      incidentId: null,
      plan: { action: "pause-rollout", path: "envs/prod/checkout", reasons: ["burn-rate-high"] },
      summary: "Block promotion of checkout: burn 16.2 > 1 over 1h",
    });

    const second = verdictEvent("checkout", at(2), [burn, gateReason("freeze-active", "frozen")]);
    await publishEvent(harness.bus, second);
    await settled();
    const secondId = proposalIdFor(`checkout:block-promotion:${second.id}`);
    expect(await state(firstId)).toBe("superseded");
    expect(await state(secondId)).toBe("pending");

    await publishEvent(harness.bus, verdictEvent("checkout", at(3), []));
    await settled();
    expect(await state(secondId)).toBe("superseded");

    // A verdict older than what was decided arrives late: it proposes nothing.
    const late = verdictEvent("checkout", at(0), [burn]);
    await publishEvent(harness.bus, late);
    await settled();
    expect(await proposals.get(proposalIdFor(`checkout:block-promotion:${late.id}`))).toBeNull();

    const superseded = (await readStream(harness.bus, "GOVERNANCE")).flatMap((e) =>
      e.type === "governance.proposal-superseded" ? [e.data] : [],
    );
    expect(superseded).toMatchObject([
      { proposalId: firstId, supersededBy: secondId },
      { proposalId: secondId, supersededBy: null, reason: "promotion is allowed again" },
    ]);
  });

  it("a verdict blocked only by missing data proposes nothing; a declaration problem is recorded only", async () => {
    await publishEvent(harness.bus, verdictEvent("legacy", at(5), [gateReason("no-data")]));
    const declared = verdictEvent("legacy", at(6), [
      gateReason("no-rollback"),
      gateReason("no-data"),
    ]);
    await publishEvent(harness.bus, declared);
    await settled();
    const blocks = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.proposal-created" && e.service === "legacy",
    );
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({
      data: { kind: "block-promotion", plan: { action: "record-only", reasons: ["no-rollback"] } },
    });
  });
});

describe("promote-canary", () => {
  it("a baked canary step gets one promote-canary proposal however often it is reported", async () => {
    const healthy = event(
      "governance.canary-healthy",
      "checkout",
      messageId("governance.canary-healthy", "checkout", 10, at(10)),
      { weight: 10, next: 50, since: at(10), bakeTime: "2s", evaluatedAt: at(12), causeId: "e" },
    );
    // Reported three times under distinct message ids (say, after the dedup window passed).
    for (const suffix of ["", ":again", ":late"]) {
      await publishEvent(harness.bus, { ...healthy, id: healthy.id + suffix });
    }
    await settled();
    const created = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.proposal-created" && e.data.kind === "promote-canary",
    );
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      service: "checkout",
      data: {
        plan: { action: "set-canary-weight", path: "envs/prod/checkout", from: 10, to: 50 },
        summary: "Promote the checkout canary from 10% to 50%: healthy through its bake time",
      },
    });
  });
});

describe("incidents and action outcomes", () => {
  const opened = (incidentId: string, origin: "slo" | "policy") =>
    event("incidents.opened", "checkout", messageId("incidents.opened", incidentId), {
      incidentId,
      origin,
      severity: origin === "slo" ? "fast-burn" : "normal",
      class: origin === "slo" ? "P1" : "P3",
      slo: origin === "slo" ? "availability" : null,
      openedAt: at(30),
      causeId: "cause",
      reason: "test",
    });

  it("a policy incident gets no rollback until it escalates into a burn, then exactly one", async () => {
    await publishEvent(harness.bus, opened("INC-POLICY", "policy"));
    await settled();
    const rollbackId = proposalIdFor("INC-POLICY:rollback-rollout");
    expect(await proposals.get(rollbackId)).toBeNull();
    for (const klass of ["P1", "P0"] as const) {
      await publishEvent(
        harness.bus,
        event(
          "incidents.escalated",
          "checkout",
          messageId("incidents.escalated", "INC-POLICY", klass),
          {
            incidentId: "INC-POLICY",
            severity: klass === "P0" ? "exhausted" : "fast-burn",
            class: klass,
            previousClass: "P3",
            at: at(31),
            causeId: "cause",
          },
        ),
      );
    }
    await settled();
    expect((await proposals.get(rollbackId))?.value).toMatchObject({
      kind: "rollback-rollout",
      incidentId: "INC-POLICY",
      state: "pending",
    });
  });

  it("an executed action makes its proposal executed; an ambiguous one needs triage; dry runs change nothing", async () => {
    const outcomes = [
      ["INC-DONE", "completed", false],
      ["INC-DRY", "completed", true],
      ["INC-AMBIGUOUS", "failed", false],
    ] as const;
    for (const [incidentId, outcome, dryRun] of outcomes) {
      await publishEvent(harness.bus, opened(incidentId, "slo"));
      await settled();
      const id = proposalIdFor(`${incidentId}:rollback-rollout`);
      const reply = await requestCommand(harness.bus, "proposal.approve", {
        proposalId: id,
        by: "ana",
        reason: "users are hurting",
      });
      expect(reply).toMatchObject({ ok: true, result: { state: "approved" } });
      await publishEvent(
        harness.bus,
        outcome === "completed"
          ? event(
              "governance.action-completed",
              "checkout",
              messageId("governance.action-completed", id),
              {
                proposalId: id,
                incidentId,
                kind: "rollback-rollout",
                at: at(40),
                branch: `safedeploy/${id}`,
                commit: "0123456789abcdef0123456789abcdef01234567",
                prUrl: null,
                diff: "",
                dryRun,
              },
            )
          : event(
              "governance.action-failed",
              "checkout",
              messageId("governance.action-failed", id),
              {
                proposalId: id,
                at: at(40),
                reason: "no commit changed envs/prod/checkout",
                needsTriage: true,
                state: "needs-triage",
              },
            ),
      );
    }
    await settled();
    expect(await state(proposalIdFor("INC-DONE:rollback-rollout"))).toBe("executed");
    expect(await state(proposalIdFor("INC-DRY:rollback-rollout"))).toBe("approved");
    expect(await state(proposalIdFor("INC-AMBIGUOUS:rollback-rollout"))).toBe("needs-triage");
    const again = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: proposalIdFor("INC-DONE:rollback-rollout"),
      by: "bob",
      reason: "late",
    });
    // Approving what already ran returns it unchanged (a retry after a lost answer).
    expect(again).toMatchObject({
      ok: true,
      result: { state: "executed", approvals: [{ by: "ana" }] },
    });
  });
});
