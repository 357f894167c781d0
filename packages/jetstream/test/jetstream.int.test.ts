import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  KvConflictError,
  TerminalError,
  consumeEvents,
  openKv,
  parseTraceparent,
  provision,
  publishEvent,
  requestCommand,
  serveCommand,
  streamConfig,
  CommandFailedError,
} from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { DeadLetter, SAFEDEPLOY_TOPOLOGY, qualifiedName } from "@safedeploy/schema";
import type { Topology } from "@safedeploy/schema";
import { createTestBus } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { eventually, pollConsumer, pollJob } from "./fixtures.js";

const topology: Topology = {
  ...SAFEDEPLOY_TOPOLOGY,
  buckets: [{ name: "counters", history: 1, description: "test" }],
};

let harness: TestBus;
let bus: Bus;

beforeAll(async () => {
  harness = await createTestBus();
  bus = harness.bus;
  await provision(bus, topology);
});

afterAll(async () => {
  await harness.cleanup();
});

async function readDeadLetters(bus: Bus): Promise<DeadLetter[]> {
  const stream = qualifiedName(bus.ns, "DEADLETTER");
  const info = await bus.jsm.streams.info(stream);
  const letters: DeadLetter[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq++
  ) {
    const stored = await bus.jsm.streams.getMessage(stream, { seq });
    if (stored !== null) letters.push(DeadLetter.parse(stored.json()));
  }
  return letters;
}

describe("provisioning", () => {
  it("creates replay-log streams with deny-delete and deny-purge, and a second run changes nothing", async () => {
    const again = await provision(bus, topology);
    expect(again.created).toEqual([]);
    expect(again.updated).toEqual([]);
    expect(again.unchanged).toHaveLength(
      topology.streams.length + topology.consumers.length + topology.buckets.length,
    );
    const info = await bus.jsm.streams.info(qualifiedName(bus.ns, "BUDGET"));
    expect(info.config).toMatchObject({
      retention: "limits",
      deny_delete: true,
      deny_purge: true,
      subjects: [`${bus.ns.root}.budget.>`],
    });
  });

  it("puts a drifted stream back to its declaration", async () => {
    const declared = topology.streams.find((stream) => stream.name === "METRICS")!;
    const config = streamConfig(bus.ns, declared);
    await bus.jsm.streams.update(config.name, { ...config, max_age: 86_400 * 1_000_000_000 });
    const report = await provision(bus, topology);
    expect(report.updated).toEqual([config.name]);
    const info = await bus.jsm.streams.info(config.name);
    expect(info.config.max_age).toBe(config.max_age);
  });
});

describe("publishEvent", () => {
  it("stores a message published twice with one id once", async () => {
    const job = pollJob("dedup-svc", 1);
    const first = await publishEvent(bus, job);
    const second = await publishEvent(bus, job);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    const stored = await bus.jsm.streams.getMessage(qualifiedName(bus.ns, "METRICS"), {
      last_by_subj: `${bus.ns.root}.metrics.poll-requested.dedup-svc`,
    });
    expect(stored?.seq).toBe(first.seq);
    const trace = parseTraceparent(stored?.header.get("traceparent"));
    expect(trace?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(stored?.header.get("Sd-Type")).toBe("metrics.poll-requested");
  });

  it("refuses an envelope that does not match its schema, naming the field", async () => {
    const job = pollJob("bad-svc", 2);
    const broken = { ...job, data: { ...job.data, mode: "sideways" } } as unknown as typeof job;
    await expect(publishEvent(bus, broken)).rejects.toThrow(/data\.mode/);
  });
});

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-error: ${String(error)}`, { cause: error });
  }
  throw new Error("expected a rejection");
}

describe("publishEvent, pipelined", () => {
  it("keeps thousands of publishes in flight on one reply subscription, each acked once", async () => {
    const jobs = Array.from({ length: 2_000 }, (_, n) => pollJob(`burst-${n % 50}`, n));
    const acks = await Promise.all(jobs.map((job) => publishEvent(bus, job, { validate: false })));
    expect(new Set(acks.map((ack) => ack.seq)).size).toBe(jobs.length);
    expect(acks.every((ack) => !ack.duplicate)).toBe(true);
    const again = await Promise.all(jobs.slice(0, 100).map((job) => publishEvent(bus, job)));
    expect(again.map((ack) => ack.seq)).toEqual(acks.slice(0, 100).map((ack) => ack.seq));
    expect(again.every((ack) => ack.duplicate)).toBe(true);
  });

  it("rejects, retryably, when no stream captures the subject or the wrong one would", async () => {
    const elsewhere = await createTestBus({ url: harness.url }); // nothing provisioned there
    try {
      const error = await rejectionOf(publishEvent(elsewhere.bus, pollJob("nowhere", 1)));
      expect(error).toMatchObject({ name: "PublishFailedError", retryable: true });
      expect(error.message).toMatch(/no stream stored it \(503/);
    } finally {
      await elsewhere.cleanup();
    }
    const misnamed = { ...bus, ns: { ...bus.ns, prefix: `${bus.ns.prefix}other-` } };
    const refused = await rejectionOf(publishEvent(misnamed, pollJob("wrong-stream", 1)));
    expect(refused).toMatchObject({ name: "PublishFailedError", retryable: true });
    expect(refused.message).toMatch(/refused it \(400\).*stream/i);
  });
});

describe("consumeEvents", () => {
  // Each test gets its own namespace so one test's messages never reach another's consumer.
  let own: TestBus;
  beforeEach(async () => {
    own = await createTestBus({ url: harness.url });
    await provision(own.bus, topology);
  });
  afterEach(async () => {
    await own.cleanup();
  });

  it("acks handled messages, retries a failing one with backoff, then dead-letters it; invalid payloads at once", async () => {
    const consumer = pollConsumer({ durable: "dlq-worker", maxDeliver: 3 });
    const service = "flaky";
    const jobs = Array.from({ length: 20 }, (_, n) => pollJob(service, 100 + n));
    const poison = jobs[7]!.id;
    const attempts = new Map<string, number[]>();
    const handled = new Set<string>();
    const subscription = consumeEvents(own.bus, {
      consumer,
      types: ["metrics.poll-requested"],
      backoffMs: [100, 300],
      handler: async (envelope) => {
        const times = attempts.get(envelope.id) ?? [];
        times.push(Date.now());
        attempts.set(envelope.id, times);
        if (envelope.id === poison) throw new Error("downstream said no");
        handled.add(envelope.id);
        await Promise.resolve();
      },
    });
    for (const job of jobs) await publishEvent(own.bus, job);
    // Invalid: not JSON, and JSON that is not an envelope. Published raw, as a broken producer would.
    await own.bus.js.publish(`${own.bus.ns.root}.metrics.poll-requested.${service}`, "{not json", {
      msgID: "raw-1",
    });
    await own.bus.js.publish(
      `${own.bus.ns.root}.metrics.poll-requested.${service}`,
      JSON.stringify({ id: "x", type: "metrics.poll-requested" }),
      { msgID: "raw-2" },
    );

    await eventually(
      () => subscription.stats.handled + subscription.stats.deadLettered === 22,
      20_000,
      "every message handled or dead-lettered",
    );
    await subscription.stop();

    // Nothing lost: count in = count handled + count dead-lettered.
    expect(subscription.stats.handled).toBe(19);
    expect(subscription.stats.deadLettered).toBe(3);
    expect(handled.size).toBe(19);

    const poisonAttempts = attempts.get(poison)!;
    expect(poisonAttempts).toHaveLength(3);
    const gaps = [poisonAttempts[1]! - poisonAttempts[0]!, poisonAttempts[2]! - poisonAttempts[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(280); // the delay grows

    const letters = await readDeadLetters(own.bus);
    const exhausted = letters.find((letter) => letter.kind === "exhausted");
    expect(exhausted?.reason).toMatch(/failed 3 deliveries; last error: Error: downstream said no/);
    expect(exhausted?.headers["Nats-Msg-Id"]).toEqual([poison]);
    expect(exhausted?.headers["Sd-Type"]).toEqual(["metrics.poll-requested"]);
    const invalid = letters.filter((letter) => letter.kind === "invalid");
    expect(invalid.map((letter) => letter.reason).sort()).toEqual([
      expect.stringMatching(/^invalid message: .*schemaVersion/),
      expect.stringMatching(/^payload is not JSON/),
    ]);
    expect(invalid.find((letter) => letter.payload === "{not json")?.deliveryCount).toBe(1);
  });

  it("dead-letters a terminal error without retrying", async () => {
    const subscription = consumeEvents(own.bus, {
      consumer: pollConsumer({ durable: "terminal-worker", filter: "metrics.poll-requested" }),
      types: ["metrics.poll-requested"],
      handler: async (envelope) => {
        await Promise.resolve();
        if (envelope.service === "refused") throw new TerminalError("policy refuses this input");
      },
    });
    await publishEvent(own.bus, pollJob("refused", 500));
    await eventually(() => subscription.stats.deadLettered >= 1, 15_000, "dead letter");
    // Terminated for the server too (a TERM it ignores would leave it pending and redeliver it).
    const durable = qualifiedName(own.bus.ns, "terminal-worker");
    const stream = qualifiedName(own.bus.ns, "METRICS");
    await eventually(
      async () => (await own.bus.jsm.consumers.info(stream, durable)).num_ack_pending === 0,
      5_000,
      "the dead-lettered message no longer pending",
    );
    await subscription.stop();
    expect(subscription.stats.retried).toBe(0);
    const letters = await readDeadLetters(own.bus);
    expect(
      letters.some(
        (letter) => letter.kind === "terminal" && letter.reason.includes("policy refuses"),
      ),
    ).toBe(true);
  });

  it("dead-letters a message whose type or service does not belong on its subject", async () => {
    const seen: string[] = [];
    const subscription = consumeEvents(own.bus, {
      consumer: pollConsumer({ durable: "subject-check", filter: ">" }),
      handler: async (envelope) => {
        await Promise.resolve();
        seen.push(envelope.id);
      },
    });
    const job = pollJob("honest", 700);
    const root = own.bus.ns.root;
    // A valid envelope, but published where another type's (or service's) messages go.
    await own.bus.js.publish(`${root}.metrics.snapshot.honest`, JSON.stringify(job), {
      msgID: "misplaced-type",
    });
    await own.bus.js.publish(`${root}.metrics.poll-requested.other`, JSON.stringify(job), {
      msgID: "misplaced-service",
    });
    await publishEvent(own.bus, job);
    await eventually(
      () => subscription.stats.handled >= 1 && subscription.stats.deadLettered >= 2,
      15_000,
      "the misplaced messages dead-lettered",
    );
    await subscription.stop();
    expect(seen).toEqual([job.id]);
    const reasons = (await readDeadLetters(own.bus)).map((letter) => letter.reason);
    expect(reasons).toContain(
      `type metrics.poll-requested does not belong on ${root}.metrics.snapshot.honest`,
    );
    expect(reasons).toContain(
      `service honest does not belong on ${root}.metrics.poll-requested.other (it is about other)`,
    );
  });

  it("runs at most `concurrency` handlers at once and still handles everything once", async () => {
    let running = 0;
    let peak = 0;
    const seen = new Map<string, number>();
    const subscription = consumeEvents(own.bus, {
      consumer: pollConsumer({ durable: "parallel" }),
      types: ["metrics.poll-requested"],
      concurrency: 4,
      handler: async (envelope) => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.set(envelope.id, (seen.get(envelope.id) ?? 0) + 1);
        running -= 1;
      },
    });
    const jobs = Array.from({ length: 40 }, (_, n) => pollJob("parallel-svc", 700 + n));
    for (const job of jobs) await publishEvent(own.bus, job);
    await eventually(() => subscription.stats.handled === 40, 15_000, "all handled");
    await subscription.stop();
    expect(peak).toBe(4);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    expect(seen.size).toBe(40);
  });

  it("acks a burst in few socket writes, not one per message (writes coalesce per loop turn)", async () => {
    const jobs = Array.from({ length: 2_000 }, (_, n) => pollJob(`ack-burst-${n % 20}`, 5_000 + n));
    await Promise.all(jobs.map((job) => publishEvent(own.bus, job)));
    // The client's transport is internal; counting its writes is the point of this test.
    const protocol = Reflect.get(own.bus.connection, "protocol") as {
      transport: { send(frame: Uint8Array): void };
    };
    const send = protocol.transport.send.bind(protocol.transport);
    let writes = 0;
    protocol.transport.send = (frame) => {
      writes += 1;
      send(frame);
    };
    const subscription = consumeEvents(own.bus, {
      consumer: pollConsumer({ durable: "ack-burst" }),
      types: ["metrics.poll-requested"],
      concurrency: 32,
      batch: 128,
      handler: () => Promise.resolve(),
    });
    await eventually(() => subscription.stats.handled === jobs.length, 30_000, "all acked");
    await subscription.stop();
    // Each ack used to be its own write (2,000 and more); a turn of the loop settles dozens.
    expect(writes).toBeLessThan(jobs.length / 4);
    const info = await own.bus.jsm.consumers.info(
      qualifiedName(own.bus.ns, "METRICS"),
      qualifiedName(own.bus.ns, "ack-burst"),
    );
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it("with confirmAcks false, acks without waiting for a reply, and the server still has every ack", async () => {
    const jobs = Array.from({ length: 500 }, (_, n) => pollJob(`sent-${n % 10}`, 9_000 + n));
    await Promise.all(jobs.map((job) => publishEvent(own.bus, job)));
    // Confirmations come back on the bus's shared reply subject: count what is asked there.
    let confirmations = 0;
    const tap = own.bus.connection.subscribe("$JS.ACK.>", {
      callback: (_error, message) => {
        if (message.reply !== undefined && message.reply !== "") confirmations += 1;
      },
    });
    const outcomes = new Map<string, number>();
    const subscription = consumeEvents(own.bus, {
      consumer: pollConsumer({ durable: "ack-sent" }),
      types: ["metrics.poll-requested"],
      concurrency: 16,
      batch: 100,
      confirmAcks: false,
      handler: () => Promise.resolve(),
      onSettled: ({ outcome }) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1),
    });
    await eventually(() => subscription.stats.handled === jobs.length, 30_000, "all handled");
    await subscription.stop();
    tap.unsubscribe();
    expect(Object.fromEntries(outcomes)).toEqual({ "ack-sent": jobs.length });
    expect(confirmations).toBe(0);
    const stream = qualifiedName(own.bus.ns, "METRICS");
    await eventually(
      async () =>
        (await own.bus.jsm.consumers.info(stream, qualifiedName(own.bus.ns, "ack-sent")))
          .num_ack_pending === 0,
      10_000,
      "every ack arrived",
    );
    const info = await own.bus.jsm.consumers.info(stream, qualifiedName(own.bus.ns, "ack-sent"));
    expect(info.num_redelivered).toBe(0);
    expect(info.delivered.consumer_seq).toBe(jobs.length);
  });

  it("recreates a deleted consumer and keeps consuming", async () => {
    const consumer = pollConsumer({ durable: "phoenix", filter: "metrics.poll-requested" });
    const seen = new Set<string>();
    const subscription = consumeEvents(own.bus, {
      consumer,
      types: ["metrics.poll-requested"],
      handler: async (envelope) => {
        seen.add(envelope.id);
        await Promise.resolve();
      },
    });
    const before = pollJob("phoenix-svc", 900);
    await publishEvent(own.bus, before);
    await eventually(() => seen.has(before.id), 15_000, "first message");
    await own.bus.jsm.consumers.delete(
      qualifiedName(own.bus.ns, "METRICS"),
      qualifiedName(own.bus.ns, "phoenix"),
    );
    const after = pollJob("phoenix-svc", 901);
    await publishEvent(own.bus, after);
    await eventually(() => seen.has(after.id), 30_000, "message after the consumer was deleted");
    await subscription.stop();
    expect(subscription.stats.recreated).toBeGreaterThanOrEqual(1);
  });
});

describe("KV compare-and-set", () => {
  it("refuses a stale revision and reports a conflict", async () => {
    const kv = await openKv(bus, "counters", z.object({ count: z.number() }));
    const revision = await kv.create("stale", { count: 1 });
    await kv.update("stale", { count: 2 }, revision);
    const error = await kv.update("stale", { count: 3 }, revision).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvConflictError);
    expect((error as KvConflictError).expectedRevision).toBe(revision);
    await expect(kv.create("stale", { count: 9 })).rejects.toBeInstanceOf(KvConflictError);
    expect((await kv.get("stale"))?.value).toEqual({ count: 2 });
  });

  it("mutate serialises concurrent read-modify-write through retries", async () => {
    const kv = await openKv(bus, "counters", z.object({ count: z.number() }));
    await Promise.all(
      Array.from({ length: 10 }, () =>
        kv.mutate("racy", (current) => ({ count: (current?.value.count ?? 0) + 1 }), {
          maxAttempts: 50,
        }),
      ),
    );
    expect((await kv.get("racy"))?.value).toEqual({ count: 10 });
  });

  it("refuses to store or read a value outside its schema", async () => {
    const kv = await openKv(bus, "counters", z.object({ count: z.number() }));
    await expect(
      kv.create("typed", { count: "one" } as unknown as { count: number }),
    ).rejects.toThrow();
    const raw = await openKv(bus, "counters", z.unknown());
    await raw.create("garbage", { nope: true });
    await expect(kv.get("garbage")).rejects.toBeInstanceOf(TerminalError);
  });
});

describe("commands", () => {
  it("answers a valid request, refuses an invalid one naming the field, and reports no responders", async () => {
    const server = await serveCommand(bus, "gate.query", async (request) => {
      await Promise.resolve();
      if (request.service === "missing")
        throw new CommandFailedError("not_found", "no such service");
      return {
        service: request.service,
        allowed: true,
        verdict: "pass" as const,
        reasons: [],
        evaluatedAt: new Date(0).toISOString(),
        evidenceAge: 0,
      };
    });
    const ok = await requestCommand(bus, "gate.query", { service: "checkout" });
    expect(ok).toEqual({
      ok: true,
      result: {
        service: "checkout",
        allowed: true,
        verdict: "pass",
        reasons: [],
        evaluatedAt: "1970-01-01T00:00:00.000Z",
        evidenceAge: 0,
      },
    });
    const notFound = await requestCommand(bus, "gate.query", { service: "missing" });
    expect(notFound).toMatchObject({ ok: false, error: { code: "not_found" } });
    const invalid = await requestCommand(bus, "gate.query", { service: "Not A Name" });
    expect(invalid).toMatchObject({
      ok: false,
      error: { code: "invalid_request", message: expect.stringMatching(/^service:/) as unknown },
    });
    await server.stop();
    await expect(
      requestCommand(bus, "gate.query", { service: "checkout" }, { timeoutMs: 500 }),
    ).rejects.toMatchObject({
      code: "unavailable",
    });
  });
});
