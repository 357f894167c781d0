import { afterAll, beforeAll, expect, it } from "vitest";
import { openKv, publishEvent } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope, Severity } from "@safedeploy/schema";
import { readStream } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { ServiceRecord } from "../src/store.js";
import { budgetEvaluation, startIncidents } from "./fixtures.js";

const services = ["checkout", "search", "cart"];

let harness: TestBus;
let replicas: ServiceHandle[] = [];

const evaluation = (
  service: string,
  minute: number,
  severity: Severity,
): Envelope<"budget.evaluated"> =>
  budgetEvaluation(service, new Date(Date.UTC(2026, 10, 24, 9, minute)).toISOString(), severity);

const incidentEvents = () => readStream(harness.bus, "INCIDENTS");

beforeAll(async () => {
  // Three replicas sharing the durable consumer and the KV records.
  ({ harness, replicas } = await startIncidents(3));
});

afterAll(async () => {
  for (const replica of replicas.slice(1)) await replica.shutdown("test");
  await harness.cleanup();
});

it("three replicas fed a shuffled burst keep exactly one incident per service, even when one stops mid-burst", async () => {
  // Per service: two healthy minutes, then fast-burn, then exhausted from minute 8.
  const burst = services.flatMap((service) =>
    Array.from({ length: 12 }, (_, minute) =>
      evaluation(service, minute, minute < 2 ? "normal" : minute < 8 ? "fast-burn" : "exhausted"),
    ),
  );
  const shuffled = burst
    .map((envelope, i) => ({ envelope, k: (i * 7919) % 97 }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.envelope);
  const half = Math.floor(shuffled.length / 2);
  await Promise.all(shuffled.slice(0, half).map((e) => publishEvent(harness.bus, e)));
  await replicas[0]!.shutdown("stopped mid-burst");
  await Promise.all(shuffled.slice(half).map((e) => publishEvent(harness.bus, e)));
  await Promise.all(shuffled.map((e) => publishEvent(harness.bus, e))); // a producer retrying

  const records = await openKv(harness.bus, "incidents-active", ServiceRecord);
  const settled = async () => {
    for (const service of services) {
      const record = await records.get(service);
      if (
        record === null ||
        record.value.outbox.length > 0 ||
        record.value.slos.availability?.at !==
          burst.find((e) => e.service === service && e.data.evaluatedAt.endsWith("09:11:00.000Z"))
            ?.data.evaluatedAt
      ) {
        return false;
      }
    }
    return true;
  };
  for (let i = 0; i < 300 && !(await settled()); i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await settled()).toBe(true);

  const events = await incidentEvents();
  const opened = events.filter((e) => e.type === "incidents.opened");
  expect(opened.map((e) => e.service).sort()).toEqual([...services].sort());
  for (const service of services) {
    const record = (await records.get(service))!.value;
    expect(record.incident).toMatchObject({ service, state: "detected" });
    expect(record.incident?.id).toBe(
      (opened.find((e) => e.service === service)!.data as { incidentId: string }).incidentId,
    );
    // At most one escalation (P1 → P0), never repeated.
    const escalations = events.filter(
      (e) => e.type === "incidents.escalated" && e.service === service,
    );
    expect(escalations.length).toBeLessThanOrEqual(1);
    expect(record.incident?.class).toBe("P0");
  }
});
