import { afterAll, beforeAll, expect, it } from "vitest";
import { openKv, publishEvent } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import { readStream } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { ServiceRecord } from "../src/store.js";
import { budgetEvaluation, startIncidents } from "./fixtures.js";

let harness: TestBus;
let replica: ServiceHandle;

beforeAll(async () => {
  const started = await startIncidents();
  harness = started.harness;
  replica = started.replicas[0]!;
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

const completed = (incidentId: string, dryRun: boolean, suffix: string) =>
  createEnvelope(
    {
      type: "governance.action-completed",
      id: messageId("governance.action-completed", "PRP-1", suffix),
      service: "search",
      data: {
        proposalId: "PRP-1",
        incidentId,
        kind: "rollback-rollout",
        at: "2026-11-24T09:10:00.000Z",
        branch: "safedeploy/PRP-1",
        commit: "0123456789abcdef0123456789abcdef01234567",
        prUrl: null,
        diff: "",
        dryRun,
      },
    },
    { source: "git-actuator", time: "2026-11-24T09:10:00.000Z" },
  );

it("an executed rollback moves its incident to mitigated once; a dry run does not", async () => {
  const at = "2026-11-24T09:00:00.000Z";
  await publishEvent(harness.bus, budgetEvaluation("search", at, "fast-burn", { objective: 99.5 }));
  const records = await openKv(harness.bus, "incidents-active", ServiceRecord);
  const state = async () => (await records.get("search"))?.value;
  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await check()); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
  };
  await until(
    async () =>
      (await state())?.incident?.state === "detected" && (await state())?.outbox.length === 0,
  );
  const incidentId = (await state())!.incident!.id;

  await publishEvent(harness.bus, completed(incidentId, true, "dry"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect((await state())?.incident?.state).toBe("detected");

  await publishEvent(harness.bus, completed(incidentId, false, "real"));
  await publishEvent(harness.bus, completed(incidentId, false, "real-again")); // a second report of it
  await until(async () => (await state())?.incident?.state === "mitigated");
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect((await state())?.incident).toMatchObject({
    state: "mitigated",
    mitigatedAt: "2026-11-24T09:10:00.000Z",
  });
  const mitigations = (await readStream(harness.bus, "INCIDENTS")).filter(
    (e) => e.type === "incidents.transitioned" && e.data.to === "mitigated",
  );
  expect(mitigations).toHaveLength(1);
});
