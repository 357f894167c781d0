import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  classifyStatus,
  isSettled,
  linksOf,
  notificationsOf,
  notifiersFor,
  parseInteraction,
  recordAttempt,
  retryDelayMs,
  slackMessage,
  slackOutcome,
  webhookBody,
} from "@safedeploy/notify";
import type { AttemptOutcome, NotificationContext, ProposalFacts } from "@safedeploy/notify";
import { NotifierDocument, createEnvelope } from "@safedeploy/schema";
import type { Envelope, EventData, EventType } from "@safedeploy/schema";

const AT = "2026-12-07T10:00:00.000Z";
const envelope = <T extends EventType>(type: T, id: string, data: EventData<T>): Envelope =>
  createEnvelope({ type, id, service: "checkout", data }, { source: "test", time: AT }) as Envelope;
const none: NotificationContext = { incident: null, proposal: null };
const proposal: ProposalFacts = {
  eventId: "governance.proposal-created:PRP-1",
  proposalId: "PRP-1",
  service: "checkout",
  kind: "rollback-rollout",
  incidentId: "INC-1",
  summary: "revert abc123",
  createdAt: AT,
};
const incident = {
  incidentId: "INC-1",
  slo: "availability",
  severity: "fast-burn",
  class: "P1",
  reason: "availability is fast-burn",
  budgetRemaining: 0.42,
};
const completed = (dryRun: boolean) =>
  envelope("governance.action-completed", `ac:${dryRun}`, {
    proposalId: "PRP-1",
    incidentId: "INC-1",
    kind: "rollback-rollout",
    at: AT,
    branch: "safedeploy/PRP-1",
    commit: "0123456789abcdef",
    prUrl: null,
    diff: "-image: v2\n+image: v1",
    dryRun,
  });

describe("which events become which notifications", () => {
  it("maps incident, approval, execution, freeze and train events to their kinds", () => {
    const kinds = (e: Envelope, c = none) => notificationsOf(e, c).map((n) => n.kind);
    const opened = envelope("incidents.opened", "io", {
      incidentId: "INC-1",
      origin: "slo",
      severity: "fast-burn",
      class: "P1",
      slo: "availability",
      openedAt: AT,
      causeId: "b",
      reason: "availability is fast-burn",
    });
    expect(kinds(opened)).toEqual(["incident.opened"]);
    const transition = (to: "resolved" | "mitigated") =>
      envelope("incidents.transitioned", `t:${to}`, {
        incidentId: "INC-1",
        from: "investigating",
        to,
        at: AT,
        actor: "ana",
        reason: "ok",
      });
    expect(kinds(transition("resolved"))).toEqual(["incident.resolved"]);
    expect(kinds(transition("mitigated"))).toEqual([]);
    const approval = (approved: boolean) =>
      envelope("governance.proposal-approved", `a:${approved}`, {
        proposalId: "PRP-1",
        by: "ana",
        at: AT,
        reason: "ok",
        approvals: approved ? 2 : 1,
        required: 2,
        approved,
      });
    expect(kinds(approval(false))).toEqual([]);
    expect(kinds(approval(true))).toEqual(["proposal.approved"]);
    expect(kinds(completed(false))).toEqual(["proposal.executed"]);
    const finished = (outcome: "completed" | "halted" | "needs-triage") =>
      envelope("governance.train-finished", `f:${outcome}`, {
        trainId: "T-1",
        at: AT,
        outcome,
        reason: "r",
      });
    expect(kinds(finished("completed"))).toEqual(["train.completed"]);
    expect(kinds(finished("halted"))).toEqual(["train.halted"]);
    const lifted = envelope("governance.freeze-lifted", "fl", {
      freezeId: "F1",
      at: AT,
      actor: "root",
      reason: "done",
    });
    expect(kinds(lifted)).toEqual(["freeze.lifted"]);
  });

  it("announces a proposal once its preview is known, about its creation event, with the diff", () => {
    expect(notificationsOf(completed(true), none)).toEqual([]);
    const [announcement] = notificationsOf(completed(true), { incident, proposal });
    expect(announcement).toMatchObject({
      kind: "proposal.created",
      eventId: proposal.eventId,
      proposalId: "PRP-1",
      diff: "-image: v2\n+image: v1",
      decidable: true,
    });
  });

  it("a preview that needs triage announces the proposal and reports the triage", () => {
    const failed = envelope("governance.action-failed", "af", {
      proposalId: "PRP-1",
      at: AT,
      reason: "the newest commit is our own rollback",
      needsTriage: true,
      state: "needs-triage",
      dryRun: true,
      harm: "own-rollback",
    });
    const found = notificationsOf(failed, { incident, proposal });
    expect(found.map((n) => [n.kind, n.eventId])).toEqual([
      ["proposal.created", proposal.eventId],
      ["proposal.needs-triage", "af"],
    ]);
  });
});

describe("which notifiers get a notification", () => {
  const doc = (spec: Record<string, unknown>) => {
    const parsed = NotifierDocument.parse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Notifier",
      metadata: { name: "n" },
      spec: { type: "webhook", url: "http://127.0.0.1/x", secretFile: "s", ...spec },
    });
    return { name: parsed.metadata.name, spec: parsed.spec };
  };
  it("filters by service and event kind; none named means all", () => {
    const global = doc({});
    const checkout = doc({ services: ["checkout"], events: ["incident.opened"] });
    const other = doc({ services: ["payments"] });
    const n = { kind: "incident.opened" as const, service: "checkout" };
    expect(notifiersFor([global, checkout, other], n)).toEqual([global, checkout]);
    expect(notifiersFor([checkout], { ...n, kind: "freeze.opened" })).toEqual([]);
  });

  it("validates a notifier's fields by type, naming them", () => {
    const bad = NotifierDocument.safeParse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Notifier",
      metadata: { name: "s" },
      spec: { type: "slack", url: "http://x.example" },
    });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join(".")).sort();
    expect(paths).toEqual(["spec.url", "spec.urlFile"]);
  });
});

describe("delivery outcomes and retries", () => {
  it("2xx delivers; 408, 429 and 5xx retry; redirects and other 4xx give up", () => {
    expect(classifyStatus(204).kind).toBe("delivered");
    for (const status of [408, 429, 500, 502, 503])
      expect(classifyStatus(status).kind).toBe("retry");
    for (const status of [301, 302, 400, 401, 404, 410])
      expect(classifyStatus(status).kind).toBe("give-up");
  });

  it("follows the schedule and repeats its last wait", () => {
    expect(retryDelayMs(1, [10, 20])).toBe(10);
    expect(retryDelayMs(2, [10, 20])).toBe(20);
    expect(retryDelayMs(9, [10, 20])).toBe(20);
  });

  it("settles within maxAttempts whatever the outcomes, and never after delivery", () => {
    const outcome = fc.constantFrom<AttemptOutcome>(
      { kind: "delivered", status: 200 },
      { kind: "retry", status: 503, error: "503" },
      { kind: "retry", status: null, error: "timeout" },
      { kind: "give-up", status: 404, error: "404" },
    );
    fc.assert(
      fc.property(
        fc.array(outcome, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 10 }),
        (outcomes, max) => {
          let record = null;
          let sent = 0;
          for (const o of outcomes) {
            if (isSettled(record)) break;
            record = recordAttempt(
              record,
              { notifier: "n", eventId: "e", event: "incident.opened" },
              o,
              max,
              AT,
            );
            sent += 1;
            if (o.kind === "delivered") expect(record.state).toBe("delivered");
            if (o.kind === "give-up") expect(record.state).toBe("failed");
          }
          expect(sent).toBeLessThanOrEqual(max);
          expect(record?.attempts).toBe(sent);
        },
      ),
    );
  });
});

describe("rendering", () => {
  const [announcement] = notificationsOf(completed(true), { incident, proposal });
  const links = linksOf(announcement!, "https://sd.example/");

  it("a webhook body names the kind, time, service, ids, links and the source event", () => {
    const body = JSON.parse(webhookBody(announcement!, links)) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: "proposal.created",
      timestamp: AT,
      data: {
        service: "checkout",
        proposalId: "PRP-1",
        incidentId: "INC-1",
        links: { proposal: "https://sd.example/v1/proposals/PRP-1" },
      },
    });
  });

  it("a proposal's Slack message shows service, SLO, burn, budget, diff and both buttons", () => {
    const message = slackMessage(announcement!, links);
    const text = JSON.stringify(message.blocks);
    for (const part of ["checkout", "availability", "fast-burn", "42.0% left", "+image: v1"]) {
      expect(text).toContain(part);
    }
    const actions = message.blocks.find((b) => b.type === "actions") as {
      elements: { action_id: string; value?: string }[];
    };
    expect(actions.elements.map((e) => [e.action_id, e.value])).toEqual([
      ["approve", "PRP-1"],
      ["reject", "PRP-1"],
      ["open", undefined],
    ]);
    const updated = slackOutcome(message.blocks, { text: "Approved by ana (1/2)" });
    expect(updated.replace_original).toBe(true);
    expect(updated.blocks.some((b) => b.type === "actions")).toBe(false);
    expect(JSON.stringify(updated.blocks)).toContain("Approved by ana (1/2)");
  });
});

describe("Slack interactivity payloads", () => {
  const form = (payload: unknown) => `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const press = (action_id: string, value: string) => ({
    type: "block_actions",
    user: { id: "U123", name: "ana" },
    actions: [{ action_id, block_id: `proposal:${value}`, value, type: "button" }],
    response_url: "https://hooks.slack.com/actions/T1/1/abc",
    message: { blocks: [{ type: "section" }] },
  });
  it("reads the user, the verb, the proposal and the response_url", () => {
    expect(parseInteraction(form(press("approve", "PRP-1")))).toEqual({
      ok: true,
      decision: {
        slackUserId: "U123",
        verb: "approve",
        proposalId: "PRP-1",
        responseUrl: "https://hooks.slack.com/actions/T1/1/abc",
        blocks: [{ type: "section" }],
      },
    });
  });
  it("refuses other actions and shapes, naming the field", () => {
    expect(parseInteraction(form(press("open", "PRP-1")))).toMatchObject({
      ok: false,
      field: "payload.actions.0.action_id",
    });
    expect(parseInteraction("a=b")).toMatchObject({ ok: false, field: "payload" });
    expect(parseInteraction("payload=%7B")).toMatchObject({ ok: false, message: "must be JSON" });
    expect(
      parseInteraction(form({ ...press("approve", "x"), type: "view_submission" })),
    ).toMatchObject({
      ok: false,
      field: "payload.type",
    });
  });
});
