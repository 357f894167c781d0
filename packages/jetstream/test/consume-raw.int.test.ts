import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { consumeRaw, provision } from "@safedeploy/jetstream";
import type { Bus, RawMessage } from "@safedeploy/jetstream";
import { deadLetterSubject, qualifiedName } from "@safedeploy/schema";
import type { ConsumerDeclaration } from "@safedeploy/schema";
import { createTestBus } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { eventually } from "./fixtures.js";

let harness: TestBus;
let bus: Bus;

const consumer = (durable: string): ConsumerDeclaration => ({
  stream: "DEADLETTER",
  durable,
  filter: ">",
  ackWait: "5s",
  maxDeliver: 3,
  maxAckPending: 10_000,
});

/** Publishes a dead letter's worth of bytes: not an envelope, and once not even JSON. */
async function publishRaw(n: number, service = "checkout"): Promise<void> {
  const h = natsHeaders();
  h.set("Sd-Dlq-Reason", `reason ${n}`);
  const body = n % 5 === 0 ? `not json ${n}` : JSON.stringify({ reason: "invalid", n });
  await bus.js.publish(deadLetterSubject(bus.ns, "METRICS", service), body, {
    headers: h,
    msgID: `raw-${n}-${Math.random()}`,
  });
}

async function ackPending(durable: string): Promise<number> {
  const info = await bus.jsm.consumers.info(
    qualifiedName(bus.ns, "DEADLETTER"),
    qualifiedName(bus.ns, durable),
  );
  return info.num_ack_pending + info.num_pending;
}

beforeAll(async () => {
  harness = await createTestBus();
  bus = harness.bus;
  await provision(bus);
});

afterAll(async () => {
  await harness.cleanup();
});

describe("consumeRaw", () => {
  it("delivers non-envelope messages untouched, in batches, acked after the handler", async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => publishRaw(i + 1)));
    const batches: RawMessage[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const subscription = consumeRaw(bus, {
      consumer: consumer("raw-a"),
      maxBatch: 64,
      handler: async (batch) => {
        batches.push([...batch]);
        await gate;
      },
    });
    try {
      await eventually(() => batches.length >= 1, 10_000, "a first batch");
      // The handler has not resolved: nothing is acked yet.
      expect(await ackPending("raw-a")).toBe(200);
      release();
      await eventually(async () => (await ackPending("raw-a")) === 0, 10_000, "all acked");
      const all = batches.flat();
      expect(all).toHaveLength(200);
      expect(Math.max(...batches.map((b) => b.length))).toBe(64);
      expect(new Set(all.map((m) => m.streamSequence)).size).toBe(200);
      const first = all.find((m) => m.streamSequence === 5);
      expect(first).toMatchObject({
        stream: qualifiedName(bus.ns, "DEADLETTER"),
        subject: `${bus.ns.root}.dlq.metrics.checkout`,
        deliveryCount: 1,
      });
      expect(new TextDecoder().decode(first?.data)).toBe("not json 5");
      expect(first?.headers["Sd-Dlq-Reason"]).toEqual(["reason 5"]);
      expect(Number.isNaN(Date.parse(first?.time ?? ""))).toBe(false);
      expect(subscription.stats.acked).toBe(200);
    } finally {
      release();
      await subscription.stop();
    }
  });

  it("redelivers a batch whose handler failed", async () => {
    await publishRaw(1_000, "payments");
    const seen: RawMessage[] = [];
    let failures = 0;
    const subscription = consumeRaw(bus, {
      consumer: consumer("raw-b"),
      backoffMs: [50],
      handler: (batch) => {
        seen.push(...batch.filter((m) => m.subject.endsWith(".payments")));
        if (failures === 0) {
          failures += 1;
          return Promise.reject(new Error("database down"));
        }
        return Promise.resolve();
      },
    });
    try {
      await eventually(() => seen.length >= 2, 10_000, "a redelivery");
      expect(seen.map((m) => m.deliveryCount).slice(0, 2)).toEqual([1, 2]);
      expect(subscription.stats.retried).toBeGreaterThan(0);
      await eventually(async () => (await ackPending("raw-b")) === 0, 10_000, "acked at last");
    } finally {
      await subscription.stop();
    }
  });

  it("recreates a deleted consumer and goes on", async () => {
    const seen = new Set<number>();
    const subscription = consumeRaw(bus, {
      consumer: consumer("raw-c"),
      handler: (batch) => {
        for (const m of batch) seen.add(m.streamSequence);
        return Promise.resolve();
      },
    });
    try {
      await eventually(() => seen.size >= 201, 10_000, "the backlog");
      await bus.jsm.consumers.delete(
        qualifiedName(bus.ns, "DEADLETTER"),
        qualifiedName(bus.ns, "raw-c"),
      );
      await publishRaw(2_000);
      await eventually(() => seen.size >= 202, 20_000, "a message after the deletion");
    } finally {
      await subscription.stop();
    }
  });
});
