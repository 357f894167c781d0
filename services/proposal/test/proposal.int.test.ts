import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKv, provision, publishEvent, requestCommand } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope } from "@safedeploy/schema";
import {
  createTestBus,
  incidentOpenedEvent,
  readStream,
  testServiceEnv,
} from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { onIncidentOpened, proposalIdFor } from "../src/proposals.js";
import { proposalService } from "../src/service.js";
import { BlockIndex, ProposalRecord } from "../src/store.js";

const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;
let harness: TestBus;
let replica: ServiceHandle;

const opened = (service: string, incidentId: string) =>
  incidentOpenedEvent(service, incidentId, "2026-11-24T09:01:00.000Z", { causeId: "eval:1" });

async function governance(bus: Bus, type: string): Promise<Envelope[]> {
  return (await readStream(bus, "GOVERNANCE")).filter((e) => e.type === type);
}

async function waitForProposal(id: string) {
  const kv = await openKv(harness.bus, "proposals", ProposalRecord);
  for (let i = 0; i < 200; i++) {
    if ((await kv.get(id)) !== null) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no proposal ${id}`);
}

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  replica = await startService(proposalService, {
    env: testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog }),
  });
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

describe("proposal service", () => {
  it("creates one rollback proposal per incident even when the cause is delivered five times", async () => {
    const cause = opened("checkout", "INC-A");
    await publishEvent(harness.bus, cause);
    const kv = await openKv(harness.bus, "proposals", ProposalRecord);
    const handler = onIncidentOpened({
      proposals: kv,
      blocks: await openKv(harness.bus, "proposals", BlockIndex),
      publish: (envelope) => publishEvent(harness.bus, envelope),
      now: () => new Date().toISOString(),
      serviceFor: () => ({ rollbackPath: "envs/prod/checkout", approvalsRequired: 1 }),
    });
    // Four more deliveries of the same cause, racing the service's own.
    await Promise.all([1, 2, 3, 4].map(() => handler(cause)));
    const id = proposalIdFor("INC-A:rollback-rollout");
    await waitForProposal(id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const created = await governance(harness.bus, "governance.proposal-created");
    expect(created.filter((e) => e.service === "checkout")).toHaveLength(1);
    expect((await kv.get(id))?.value).toMatchObject({
      id,
      state: "pending",
      incidentId: "INC-A",
      kind: "rollback-rollout",
      plan: { action: "git-revert", path: "envs/prod/checkout" },
    });
  });

  it("approving twice records one approval and hands the proposal to the actuator once", async () => {
    const id = proposalIdFor("INC-A:rollback-rollout");
    const first = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: id,
      by: "ana",
      reason: "burning",
    });
    const second = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: id,
      by: "ana",
      reason: "again",
    });
    expect(first).toMatchObject({
      ok: true,
      result: { state: "approved", approvals: [{ by: "ana", reason: "burning" }] },
    });
    expect(second).toEqual(first);
    expect(await governance(harness.bus, "governance.proposal-approved")).toHaveLength(1);
    // One preview (its own type: asked for when the proposal was made), then one real request.
    const previews = await governance(harness.bus, "governance.preview-requested");
    expect(previews).toMatchObject([{ data: { proposalId: id, kind: "rollback-rollout" } }]);
    const requests = await governance(harness.bus, "governance.action-requested");
    expect(requests).toMatchObject([
      { data: { proposalId: id, kind: "rollback-rollout", plan: { path: "envs/prod/checkout" } } },
    ]);
    expect(requests[0]?.data).not.toHaveProperty("dryRun");
  });

  it("needs two distinct approvers where the policy asks for four eyes", async () => {
    await publishEvent(harness.bus, opened("search", "INC-B")); // search requires 2 approvals
    const id = proposalIdFor("INC-B:rollback-rollout");
    await waitForProposal(id);
    const one = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: id,
      by: "ana",
      reason: "yes",
    });
    expect(one).toMatchObject({ ok: true, result: { state: "pending" } });
    const same = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: id,
      by: "ana",
      reason: "yes!",
    });
    expect(same).toMatchObject({ ok: true, result: { state: "pending" } });
    const two = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: id,
      by: "bo",
      reason: "agreed",
    });
    expect(two).toMatchObject({ ok: true, result: { state: "approved" } });
    if (two.ok) expect(two.result.approvals.map((a) => a.by)).toEqual(["ana", "bo"]);
  });

  it("a rejected proposal cannot be approved; an unknown one is not found", async () => {
    await publishEvent(harness.bus, opened("cart", "INC-C"));
    const id = proposalIdFor("INC-C:rollback-rollout");
    await waitForProposal(id);
    expect(
      await requestCommand(harness.bus, "proposal.reject", {
        proposalId: id,
        by: "ana",
        reason: "not the deploy",
      }),
    ).toMatchObject({
      ok: true,
      result: { state: "rejected" },
    });
    expect(
      await requestCommand(harness.bus, "proposal.approve", {
        proposalId: id,
        by: "bo",
        reason: "yes",
      }),
    ).toMatchObject({
      ok: false,
      error: { code: "conflict" },
    });
    expect(
      await requestCommand(harness.bus, "proposal.approve", {
        proposalId: "PRP-NOPE",
        by: "bo",
        reason: "yes",
      }),
    ).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
    expect(
      await requestCommand(harness.bus, "proposal.approve", {
        proposalId: id,
        by: "bo",
        reason: "",
      }),
    ).toMatchObject({
      ok: false,
      error: { code: "invalid_request", message: "reason: a reason is required" },
    });
  });
  it("names in a rollback's plan the commit Argo CD reported live when the burn began", async () => {
    const deploy = (revision: string, at: string) => ({
      reporter: "argocd" as const,
      app: "checkout",
      revision,
      trigger: "on-deployed" as const,
      step: null,
      at,
      commitTime: null,
      details: {},
    });
    const live = "c0ffee".padEnd(40, "1");
    for (const [revision, at] of [
      ["a".repeat(40), "2026-11-24T07:00:00.000Z"],
      [live, "2026-11-24T08:30:00.000Z"],
      // Synced after the burn began (09:01): not what was serving.
      ["b".repeat(40), "2026-11-24T09:30:00.000Z"],
    ] as const) {
      const answer = await requestCommand(harness.bus, "deploy.record", {
        service: "checkout",
        deploy: deploy(revision, at),
      });
      expect(answer.ok).toBe(true);
    }
    await publishEvent(harness.bus, opened("checkout", "INC-LIVE"));
    const id = proposalIdFor("INC-LIVE:rollback-rollout");
    await waitForProposal(id);
    const kv = await openKv(harness.bus, "proposals", ProposalRecord);
    expect((await kv.get(id))?.value.plan).toEqual({
      action: "git-revert",
      path: "envs/prod/checkout",
      burnBegan: "2026-11-24T09:01:00.000Z",
      liveRevision: live,
    });
  });
});
