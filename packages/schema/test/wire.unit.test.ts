import { describe, expect, it } from "vitest";
import {
  AnyEnvelope,
  COMMANDS,
  DEFAULT_NAMESPACE,
  EVENT_TYPES,
  SAFEDEPLOY_TOPOLOGY,
  STREAMS,
  commandReply,
  commandSubject,
  createEnvelope,
  deadLetterSubject,
  envelopeSchema,
  eventSubject,
  eventSubjectFilter,
  messageId,
  parseDuration,
  qualifiedName,
  serviceOfSubject,
  streamOfEventType,
  streamSubjectFilter,
} from "@safedeploy/schema";

const at = "2026-11-24T09:00:00.000Z";

function verdict(service = "checkout") {
  return createEnvelope(
    {
      type: "governance.verdict",
      id: messageId("governance.verdict", service, at),
      service,
      data: {
        allowed: false,
        verdict: "block",
        reasons: [],
        evaluatedAt: at,
        causeId: "budget:1",
        evidenceAge: null,
        evidence: [],
      },
    },
    { source: "policy", time: at, causedBy: { id: "budget:1", correlationId: "corr-1" } },
  );
}

describe("subjects", () => {
  it("puts the service last and the domain second", () => {
    expect(eventSubject(DEFAULT_NAMESPACE, "budget.evaluated", "checkout")).toBe(
      "sd.budget.evaluated.checkout",
    );
    expect(eventSubjectFilter(DEFAULT_NAMESPACE, "budget.evaluated")).toBe("sd.budget.evaluated.*");
    expect(streamSubjectFilter(DEFAULT_NAMESPACE, "GOVERNANCE")).toBe("sd.governance.>");
    expect(deadLetterSubject(DEFAULT_NAMESPACE, "BUDGET", "checkout")).toBe(
      "sd.dlq.budget.checkout",
    );
    expect(commandSubject(DEFAULT_NAMESPACE, "proposal.approve")).toBe("sd.cmd.proposal.approve");
    expect(serviceOfSubject("sd.budget.evaluated.checkout")).toBe("checkout");
  });

  it("namespaces streams and buckets by prefix", () => {
    const ns = { root: "t1", prefix: "T1_" };
    expect(qualifiedName(ns, "METRICS")).toBe("T1_METRICS");
    expect(eventSubject(ns, "metrics.snapshot", "a")).toBe("t1.metrics.snapshot.a");
  });

  it("maps every event type to exactly one stream", () => {
    for (const type of EVENT_TYPES) expect(STREAMS).toContain(streamOfEventType(type));
    expect(streamOfEventType("nonsense.event")).toBeUndefined();
    expect(streamOfEventType("nodot")).toBeUndefined();
  });
});

describe("envelopes", () => {
  it("inherits correlation from the cause and records causation", () => {
    const envelope = verdict();
    expect(envelope).toMatchObject({
      schemaVersion: 1,
      causationId: "budget:1",
      correlationId: "corr-1",
      source: "policy",
      type: "governance.verdict",
    });
    expect(envelopeSchema("governance.verdict").parse(envelope)).toEqual(envelope);
    expect(AnyEnvelope.parse(envelope)).toEqual(envelope);
  });

  it("starts a chain at a root cause", () => {
    const root = createEnvelope(
      {
        type: "metrics.poll-requested",
        id: "poll:1",
        service: "checkout",
        data: { intervalStart: at, intervalEnd: at, mode: "recorded" },
      },
      { source: "collector", time: at },
    );
    expect(root.causationId).toBeNull();
    expect(root.correlationId).toBe("poll:1");
    const explicit = createEnvelope(
      { type: "metrics.poll-requested", id: "poll:2", service: "checkout", data: root.data },
      { source: "collector", time: at, correlationId: "abc" },
    );
    expect(explicit.correlationId).toBe("abc");
  });

  it("refuses unknown types, wrong versions and bad payloads, naming the field", () => {
    const envelope = verdict();
    expect(AnyEnvelope.safeParse({ ...envelope, type: "governance.nope" }).success).toBe(false);
    expect(AnyEnvelope.safeParse({ ...envelope, schemaVersion: 2 }).success).toBe(false);
    const bad = envelopeSchema("governance.verdict").safeParse({
      ...envelope,
      data: { ...envelope.data, allowed: "yes" },
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(["data", "allowed"]);
    expect(AnyEnvelope.safeParse({ ...envelope, service: "Bad Name" }).success).toBe(false);
  });

  it("builds message ids from the cause", () => {
    expect(messageId("budget.evaluated", "checkout", "availability", 42)).toBe(
      "budget.evaluated:checkout:availability:42",
    );
  });
});

describe("commands", () => {
  it("validates requests and replies", () => {
    expect(
      COMMANDS["proposal.approve"].request.safeParse({ proposalId: "PRP-1", by: "ana", reason: "" })
        .success,
    ).toBe(false);
    const reply = commandReply("gate.query");
    expect(
      reply.safeParse({
        ok: true,
        result: {
          service: "checkout",
          allowed: true,
          verdict: "pass",
          reasons: [],
          evaluatedAt: at,
          evidenceAge: 1.5,
        },
      }).success,
    ).toBe(true);
    // A gate answer that does not say pass, block or unknown is not a gate answer.
    expect(
      reply.safeParse({
        ok: true,
        result: { service: "checkout", allowed: true, reasons: [], evaluatedAt: at },
      }).success,
    ).toBe(false);
    expect(reply.safeParse({ ok: false, error: { code: "conflict", message: "no" } }).success).toBe(
      true,
    );
    expect(reply.safeParse({ ok: false, error: { code: "teapot", message: "no" } }).success).toBe(
      false,
    );
  });
  it("takes only http(s) links: a person is never sent to javascript: or file:", () => {
    const transition = (link: string) =>
      COMMANDS["incident.transition"].request.safeParse({
        incidentId: "INC-1",
        to: "investigating",
        actor: "ana",
        reason: "looking",
        link,
      });
    expect(transition("https://status.example/INC-1").success).toBe(true);
    expect(transition("http://127.0.0.1:3000/runbook").success).toBe(true);
    for (const hostile of ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,x"]) {
      const result = transition(hostile);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]).toMatchObject({
        path: ["link"],
        message: "must be an http(s) URL",
      });
    }
  });
});

describe("topology", () => {
  it("declares every stream once, with valid durations, and consumers on declared streams", () => {
    const names = SAFEDEPLOY_TOPOLOGY.streams.map((stream) => stream.name);
    expect([...names].sort()).toEqual([...STREAMS].sort());
    for (const stream of SAFEDEPLOY_TOPOLOGY.streams) {
      expect(parseDuration(stream.duplicateWindow)).toBeGreaterThan(0);
      if (stream.maxAge !== null) expect(parseDuration(stream.maxAge)).toBeGreaterThan(0);
    }
    const durables = new Set<string>();
    for (const consumer of SAFEDEPLOY_TOPOLOGY.consumers) {
      expect(names).toContain(consumer.stream);
      expect(parseDuration(consumer.ackWait)).toBeGreaterThan(0);
      const key = `${consumer.stream}/${consumer.durable}`;
      expect(durables.has(key)).toBe(false);
      durables.add(key);
      if (consumer.filter !== ">") expect(streamOfEventType(consumer.filter)).toBe(consumer.stream);
    }
  });
});
