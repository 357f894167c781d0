import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openKv, provision, publishEvent } from "@safedeploy/jetstream";
import { qualifiedName } from "@safedeploy/schema";
import type { Envelope, Severity } from "@safedeploy/schema";
import { createTestBus, readStream, testServiceEnv, waitUntil } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { ServiceRecord } from "../src/store.js";
import { budgetEvaluation } from "./fixtures.js";

// Replicas are real processes here, so one can be SIGKILLed mid-burst: no graceful stop, its
// in-flight messages unacked until the server redelivers them (ackWait, 30 s).
const main = new URL("../dist/main.js", import.meta.url).pathname;
const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;
const services = Array.from({ length: 12 }, (_, i) => `svc-${i}`);

let harness: TestBus;
const replicas: ChildProcess[] = [];

const evaluation = (service: string, minute: number, severity: Severity): Envelope =>
  budgetEvaluation(service, new Date(Date.UTC(2026, 10, 24, 9, minute)).toISOString(), severity);

async function consumerIdle(waitingReplicas?: number): Promise<boolean> {
  const info = await harness.bus.jsm.consumers.info(
    qualifiedName(harness.bus.ns, "BUDGET"),
    qualifiedName(harness.bus.ns, "incident"),
  );
  if (waitingReplicas !== undefined) return info.num_waiting >= waitingReplicas;
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

beforeAll(async () => {
  if (!existsSync(main)) throw new Error(`${main} is missing: run tsc -b (pnpm test does) first`);
  harness = await createTestBus();
  await provision(harness.bus);
  const env = { ...process.env, ...testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog }) };
  for (let i = 0; i < 3; i++) {
    replicas.push(spawn(process.execPath, [main], { env, stdio: "ignore" }));
  }
  await waitUntil(
    () => consumerIdle(3),
    20_000,
    () => "three replicas did not start pulling",
  );
});

afterAll(async () => {
  for (const replica of replicas) replica.kill("SIGTERM");
  await Promise.all(
    replicas.map((r) =>
      r.exitCode !== null || r.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => r.once("exit", resolve)),
    ),
  );
  await harness.cleanup();
});

it(
  "a replica SIGKILLed mid-burst loses nothing and duplicates nothing",
  { timeout: 90_000 },
  async () => {
    // Per service: two healthy minutes, fast-burn, then exhausted from minute 8.
    const burst = services.flatMap((service) =>
      Array.from({ length: 12 }, (_, minute) =>
        evaluation(service, minute, minute < 2 ? "normal" : minute < 8 ? "fast-burn" : "exhausted"),
      ),
    );
    const shuffled = burst
      .map((envelope, i) => ({ envelope, k: (i * 7919) % 151 }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.envelope);
    const half = Math.floor(shuffled.length / 2);
    await Promise.all(shuffled.slice(0, half).map((e) => publishEvent(harness.bus, e)));
    replicas[0]!.kill("SIGKILL");
    await Promise.all(shuffled.slice(half).map((e) => publishEvent(harness.bus, e)));

    // The killed replica's unacked deliveries come back after ackWait; everything settles.
    await waitUntil(
      () => consumerIdle(),
      75_000,
      () => "the burst was not fully handled",
    );
    const records = await openKv(harness.bus, "incidents-active", ServiceRecord);
    const events = await readStream(harness.bus, "INCIDENTS");
    for (const service of services) {
      const record = (await records.get(service))?.value;
      expect(record?.outbox).toEqual([]);
      // Nothing lost: the newest evidence of the service is the one its record holds.
      expect(record?.slos.availability?.at).toBe(
        new Date(Date.UTC(2026, 10, 24, 9, 11)).toISOString(),
      );
      const opened = events.filter((e) => e.type === "incidents.opened" && e.service === service);
      expect(opened).toHaveLength(1);
      expect(record?.incident).toMatchObject({ state: "detected", class: "P0" });
      expect(opened[0]?.type === "incidents.opened" && opened[0].data.incidentId).toBe(
        record?.incident?.id,
      );
      // Every transition once: P1 → P0 escalation at most once, nothing else.
      const escalations = events.filter(
        (e) => e.type === "incidents.escalated" && e.service === service,
      );
      expect(escalations.length).toBeLessThanOrEqual(1);
      expect(
        events.filter((e) => e.type === "incidents.transitioned" && e.service === service),
      ).toEqual([]);
    }
  },
);
