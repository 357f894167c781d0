import { afterAll, beforeAll, expect, it } from "vitest";
import { publishEvent } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import { gateReason, readStream, verdictEvent, waitUntil } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { startIncidents } from "./fixtures.js";

const catalog = new URL("../../../test/fixtures/catalog/governance", import.meta.url).pathname;
const at = (second: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, second)).toISOString();
const violations = [
  gateReason("no-rollback", "no rollback declared"),
  gateReason("canary-required"),
];

let harness: TestBus;
let replicas: ServiceHandle[] = [];

beforeAll(async () => {
  ({ harness, replicas } = await startIncidents(2, catalog));
});

afterAll(async () => {
  for (const replica of replicas) await replica.shutdown("test");
  await harness.cleanup();
});

it("a structural violation opens one policy incident across replicas and redeliveries; its correction resolves it", async () => {
  const first = verdictEvent("legacy", at(1), violations);
  const second = verdictEvent("legacy", at(2), [...violations, gateReason("no-data")]);
  // Out of order, twice each, to two replicas.
  for (const envelope of [second, first, second, first]) await publishEvent(harness.bus, envelope);
  const incidents = () => readStream(harness.bus, "INCIDENTS");
  await waitUntil(
    async () => (await incidents()).length >= 1,
    10_000,
    () => "no incident opened",
  );

  await publishEvent(harness.bus, verdictEvent("legacy", at(3), [gateReason("no-data")]));
  await waitUntil(
    async () => (await incidents()).some((e) => e.type === "incidents.transitioned"),
    10_000,
    () => "the policy incident was not resolved",
  );
  await new Promise((resolve) => setTimeout(resolve, 300)); // anything duplicated would show by now
  const events = await incidents();
  expect(events.map((e) => e.type)).toEqual(["incidents.opened", "incidents.transitioned"]);
  expect(events[0]).toMatchObject({
    service: "legacy",
    data: {
      origin: "policy",
      slo: null,
      class: "P3",
      reason: "policy violation: no rollback declared; canary-required",
    },
  });
  expect(events[1]).toMatchObject({
    data: { from: "detected", to: "resolved", actor: "system", at: at(3) },
  });
});
