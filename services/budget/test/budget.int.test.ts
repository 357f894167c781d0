import { afterAll, beforeAll, expect, it } from "vitest";
import { publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope, SliWindow } from "@safedeploy/schema";
import { qualifiedName } from "@safedeploy/schema";
import { createTestBus, readStream, sliSnapshotEvent, testServiceEnv } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { budgetService } from "../src/service.js";

const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;
const windows = ["5m", "30m", "1h", "6h", "3d", "30d"];

let harness: TestBus;
const replicas: ServiceHandle[] = [];

function snapshot(
  service: string,
  at: string,
  errorsPerSecond: number,
): Envelope<"metrics.snapshot"> {
  const samples: SliWindow[] = windows.map((window) => ({
    window,
    errorQuery: `e[${window}]`,
    totalQuery: `t[${window}]`,
    errors: window === "30d" ? 0.0001 : errorsPerSecond,
    total: 10,
    status: "ok",
  }));
  const snapshot = sliSnapshotEvent(service, at, samples);
  // A second SLO with too little traffic to judge: evaluated in the same message.
  const quiet = {
    slo: "latency",
    objective: 99,
    sloWindow: "30d",
    minEvents: 1_000_000,
    mode: "recorded" as const,
    evaluatedAt: at,
    windows: samples.map((sample) => ({ ...sample, errors: 0 })),
  };
  return { ...snapshot, data: { ...snapshot.data, slos: [...snapshot.data.slos, quiet] } };
}

beforeAll(async () => {
  harness = await createTestBus();
  const env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog });
  // Two replicas sharing the durable consumer.
  for (let i = 0; i < 2; i++) replicas.push(await startService(budgetService, { env }));
});

afterAll(async () => {
  for (const replica of replicas) await replica.shutdown("test");
  await harness.cleanup();
});

async function evaluations(): Promise<Envelope<"budget.evaluated">[]> {
  return (await readStream(harness.bus, "BUDGET")).filter(
    (e): e is Envelope<"budget.evaluated"> => e.type === "budget.evaluated",
  );
}

it("turns each service's snapshot into one evaluation of all its SLOs, whatever the replicas and duplicates", async () => {
  const at = (s: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, s)).toISOString();
  const published = [
    snapshot("checkout", at(0), 0.0001),
    snapshot("checkout", at(30), 10),
    snapshot("search", at(30), 0),
  ];
  for (const envelope of published) {
    await publishEvent(harness.bus, envelope);
    await publishEvent(harness.bus, envelope); // a producer retrying: dropped by msg id
  }
  let found: Envelope<"budget.evaluated">[] = [];
  for (let i = 0; i < 200 && found.length < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    found = await evaluations();
  }
  await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more should arrive
  found = await evaluations();
  expect(found).toHaveLength(3);
  const bySnapshot = new Map(found.map((e) => [e.data.snapshotId, e]));
  const healthy = bySnapshot.get(published[0]!.id)!;
  expect(healthy).toMatchObject({
    id: `budget.evaluated:${published[0]!.id}`,
    causationId: published[0]!.id,
    correlationId: published[0]!.correlationId,
    data: {
      evaluatedAt: at(0),
      slos: [
        { slo: "availability", severity: "normal", evaluatedAt: at(0) },
        { slo: "latency", severity: "no-data", objective: 99 },
      ],
    },
  });
  const [burning, quiet] = bySnapshot.get(published[1]!.id)!.data.slos;
  expect(burning?.severity).toBe("fast-burn");
  expect(burning?.explanation).toMatch(/^fast-burn: burn 1000 > 14.4 over 1h/);
  expect(quiet?.severity).toBe("no-data");
  // The record alone explains the verdict: the queries it ran and what they returned.
  expect(burning?.windows.find((w) => w.window === "1h")).toMatchObject({
    errorQuery: "e[1h]",
    totalQuery: "t[1h]",
    errors: 10,
    total: 10,
  });
  // search has no errors and ample traffic in every window.
  expect(bySnapshot.get(published[2]!.id)!.data.slos[0]?.severity).toBe("normal");
  const metrics = await (await fetch(`${replicas[0]!.health.url}/metrics`)).text();
  expect(metrics).toContain("safedeploy_budget_evaluations_total");
});

it("dead-letters a forged snapshot (an SLO twice, an SLO of another moment) naming the field, and evaluates nothing of it", async () => {
  const at = new Date(Date.UTC(2026, 10, 24, 10, 0, 0)).toISOString();
  const honest = snapshot("cart", at, 0);
  const [first] = honest.data.slos;
  const twice = {
    ...honest,
    id: `${honest.id}:twice`,
    data: { ...honest.data, slos: [first!, first!] },
  };
  const elsewhen = {
    ...honest,
    id: `${honest.id}:elsewhen`,
    data: { ...honest.data, slos: [{ ...first!, evaluatedAt: "2026-11-24T09:00:00.000Z" }] },
  };
  // A forger skips the producer's validation; the consumer still checks.
  await publishEvent(harness.bus, twice, { validate: false });
  await publishEvent(harness.bus, elsewhen, { validate: false });
  const stream = qualifiedName(harness.bus.ns, "DEADLETTER");
  let letters: string[] = [];
  for (let i = 0; i < 200 && letters.length < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const info = await harness.bus.jsm.streams.info(stream);
    letters = [];
    for (
      let seq = info.state.first_seq;
      info.state.messages > 0 && seq <= info.state.last_seq;
      seq++
    ) {
      const text = (await harness.bus.jsm.streams.getMessage(stream, { seq }))?.string() ?? "";
      if (text.includes(honest.id)) letters.push(text);
    }
  }
  const reasons = letters.map((text) => (JSON.parse(text) as { reason: string }).reason);
  expect(reasons).toEqual(
    expect.arrayContaining([
      expect.stringContaining("slos.1.slo: availability appears twice"),
      expect.stringContaining(`slos.0.evaluatedAt: must equal the message's evaluatedAt ${at}`),
    ]),
  );
  expect((await evaluations()).filter((e) => e.service === "cart")).toEqual([]);
});
