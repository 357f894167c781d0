import { afterAll, beforeAll, expect, it } from "vitest";
import { consumeEvents, provision, publishEvent } from "@safedeploy/jetstream";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { createTestBus, startNatsServer } from "@safedeploy/testing";
import type { PrivateNatsServer, TestBus } from "@safedeploy/testing";
import { eventually, pollConsumer, pollJob } from "./fixtures.js";

let server: PrivateNatsServer;
let harness: TestBus;

beforeAll(async () => {
  server = await startNatsServer();
  harness = await createTestBus({ url: server.url });
  await provision(harness.bus, SAFEDEPLOY_TOPOLOGY);
});

afterAll(async () => {
  await harness.cleanup().catch(() => undefined);
  await server.dispose();
});

it("keeps consuming across a server restart, and never re-handles what was acked before it", async () => {
  const { bus } = harness;
  const total = 200;
  const jobs = Array.from({ length: total }, (_, n) => pollJob("restart-svc", n));
  for (const job of jobs) await publishEvent(bus, job);

  const handledCount = new Map<string, number>();
  const ackedBeforeRestart = new Set<string>();
  let restarting = false;
  const subscription = consumeEvents(bus, {
    consumer: pollConsumer({ durable: "survivor", ackWait: "5s" }),
    types: ["metrics.poll-requested"],
    batch: 10,
    handler: async (envelope) => {
      handledCount.set(envelope.id, (handledCount.get(envelope.id) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
    onSettled: (settled) => {
      if (settled.outcome === "acked" && !restarting && settled.messageId !== undefined) {
        ackedBeforeRestart.add(settled.messageId);
      }
    },
  });

  await eventually(() => handledCount.size >= 50, 20_000, "50 messages before the restart");
  restarting = true;
  await server.restart();
  await eventually(() => handledCount.size === total, 60_000, "every message after the restart");
  await subscription.stop();

  // Mid-stream: some acked before the restart, not all.
  expect(ackedBeforeRestart.size).toBeGreaterThan(0);
  expect(ackedBeforeRestart.size).toBeLessThan(total);
  for (const id of ackedBeforeRestart) expect(handledCount.get(id), id).toBe(1);
  expect([...handledCount.keys()].sort()).toEqual(jobs.map((job) => job.id).sort());
}, 90_000);
