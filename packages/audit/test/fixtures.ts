import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, EventData, EventType, StreamName } from "@safedeploy/schema";
import { streamOfEventType } from "@safedeploy/schema";
import type { AuditMessage } from "../src/index.js";

const T0 = Date.UTC(2026, 10, 24, 9, 0, 0);
export const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

export function envelope<T extends EventType>(
  type: T,
  id: string,
  service: string,
  data: EventData<T>,
  minutes: number,
): Envelope<T> {
  return createEnvelope({ type, id, service, data }, { source: "test", time: at(minutes) });
}

/** One incident's whole life, as the services would publish it. */
export function incidentStory(service: string, incident: string, proposal: string): Envelope[] {
  const window = {
    window: "5m",
    errorQuery: "errors",
    totalQuery: "total",
    errors: 30,
    total: 100,
    status: "ok" as const,
  };
  const snapshotId = messageId("metrics.snapshot", service, at(0));
  const evalId = messageId("budget.evaluated", snapshotId);
  const laterSnapshot = messageId("metrics.snapshot", service, at(5));
  const laterEval = messageId("budget.evaluated", laterSnapshot);
  const snapshot = (id: string, minutes: number) =>
    envelope(
      "metrics.snapshot",
      id,
      service,
      {
        evaluatedAt: at(minutes),
        slos: [
          {
            slo: "availability",
            objective: 99.9,
            sloWindow: "30d",
            minEvents: 10,
            mode: "direct",
            evaluatedAt: at(minutes),
            windows: [window],
          },
        ],
      },
      minutes,
    );
  const evaluation = (id: string, snap: string, minutes: number) =>
    envelope(
      "budget.evaluated",
      id,
      service,
      {
        snapshotId: snap,
        evaluatedAt: at(minutes),
        slos: [
          {
            slo: "availability",
            evaluatedAt: at(minutes),
            objective: 99.9,
            severity: "fast-burn",
            burn: "fast-burn",
            budget: "ok",
            budgetRemaining: 0.4,
            errorRatio: 0.3,
            burnRates: [{ window: "5m", errorRatio: 0.3, burnRate: 300 }],
            rules: [],
            explanation: "fast-burn",
            windows: [window],
          },
        ],
      },
      minutes,
    );
  const transition = (from: string, to: string, minutes: number, actor = "system") =>
    envelope(
      "incidents.transitioned",
      messageId("incidents.transitioned", incident, to),
      service,
      {
        incidentId: incident,
        from: from as "detected",
        to: to as "detected",
        at: at(minutes),
        actor,
        reason: `to ${to}`,
      },
      minutes,
    );
  return [
    snapshot(snapshotId, 0),
    evaluation(evalId, snapshotId, 0),
    envelope(
      "incidents.opened",
      messageId("incidents.opened", incident),
      service,
      {
        incidentId: incident,
        origin: "slo",
        severity: "fast-burn",
        class: "P1",
        slo: "availability",
        openedAt: at(1),
        causeId: evalId,
        reason: "availability is fast-burn",
      },
      1,
    ),
    envelope(
      "governance.proposal-created",
      messageId("governance.proposal-created", proposal),
      service,
      {
        proposalId: proposal,
        kind: "rollback-rollout",
        incidentId: incident,
        causeId: messageId("incidents.opened", incident),
        createdAt: at(2),
        summary: `roll back ${service}`,
        plan: { action: "git-revert", path: `envs/prod/${service}` },
      },
      2,
    ),
    transition("detected", "investigating", 3, "alice"),
    envelope(
      "governance.proposal-approved",
      messageId("governance.proposal-approved", proposal, "alice"),
      service,
      {
        proposalId: proposal,
        by: "alice",
        at: at(4),
        reason: "looks right",
        approvals: 1,
        required: 1,
        approved: true,
      },
      4,
    ),
    snapshot(laterSnapshot, 5),
    evaluation(laterEval, laterSnapshot, 5),
    envelope(
      "governance.action-completed",
      messageId("governance.action-completed", proposal),
      service,
      {
        proposalId: proposal,
        incidentId: incident,
        kind: "rollback-rollout",
        at: at(6),
        branch: `safedeploy/${proposal}`,
        commit: "0123456789abcdef0123456789abcdef01234567",
        prUrl: "https://github.example/org/env/pull/7",
        diff: "--- a\n+++ b\n",
        dryRun: false,
      },
      6,
    ),
    transition("investigating", "mitigated", 7),
    transition("mitigated", "resolved", 30),
  ];
}

/** The stream an envelope is stored in. */
export function streamOf(e: Envelope): StreamName {
  const stream = streamOfEventType(e.type);
  if (stream === undefined) throw new Error(`no stream for ${e.type}`);
  return stream;
}

/** Stored-message form of envelopes of one stream, numbered from `firstSeq`. */
export function asMessages(envelopes: readonly Envelope[], firstSeq = 1): AuditMessage[] {
  return envelopes.map((e, index) => ({
    seq: firstSeq + index,
    subject: `sd.${e.type}.${e.service}`,
    headers: { "Nats-Msg-Id": [e.id], "Sd-Type": [e.type] },
    data: new TextEncoder().encode(JSON.stringify(e)),
    time: e.time,
  }));
}

/** Appends a story stream by stream, in publication order, numbering each stream from 1. */
export function byStream(envelopes: readonly Envelope[]): Map<StreamName, AuditMessage[]> {
  const grouped = new Map<StreamName, Envelope[]>();
  for (const e of envelopes) grouped.set(streamOf(e), [...(grouped.get(streamOf(e)) ?? []), e]);
  return new Map([...grouped].map(([stream, list]) => [stream, asMessages(list)]));
}
