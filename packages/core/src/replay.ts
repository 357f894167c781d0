import type { Envelope } from "@safedeploy/schema";
import { evaluateSlo } from "./budget.js";
import type { BurnRule } from "./budget.js";
import { gateVerdict, withEvaluation } from "./gate.js";
import type { FreezeWindow, GateInput, SloStatus } from "./gate.js";
import { transitionIncident } from "./incident.js";
import { EMPTY_SERVICE_STATE, decideIncident } from "./incident-decision.js";
import type { IncidentPolicy, ServiceIncidentState } from "./incident-decision.js";
import { decidePolicyIncident } from "./policy-incident.js";

/** What the recorded decisions of one service were made under. */
export interface ReplayPolicy {
  readonly burnRules: readonly BurnRule[];
  readonly incident: IncidentPolicy;
  readonly gate: Pick<GateInput, "service" | "policy">;
}

/** One decision, reduced to what must be reproduced: `summary` is what is compared. */
export interface ReplayDecision {
  readonly kind: "budget" | "incident" | "verdict";
  /** The time of the evidence it was decided on. */
  readonly at: string;
  /** Which input it answers (a snapshot id, an evaluation id, a verdict time). */
  readonly cause: string;
  readonly summary: string;
  /** The message it was recorded in, for the recorded side. */
  readonly messageId?: string;
}

export interface ReplayResult {
  readonly recorded: readonly ReplayDecision[];
  readonly derived: readonly ReplayDecision[];
}

/** Where recorded and derived decisions first part, if they do. */
export interface ReplayDifference {
  readonly index: number;
  readonly recorded: ReplayDecision | null;
  readonly derived: ReplayDecision | null;
}

const round = (value: number | null) => (value === null ? "null" : value.toFixed(6));

function budgetSummary(
  slo: string,
  evaluation: {
    readonly severity: string;
    readonly budgetRemaining: number | null;
    readonly explanation: string;
  },
): string {
  return `${slo}: ${evaluation.severity}, budget ${round(evaluation.budgetRemaining)} (${evaluation.explanation})`;
}

function verdictSummary(verdict: {
  readonly allowed: boolean;
  readonly reasons: readonly { readonly code: string }[];
}) {
  return verdict.allowed ? "allowed" : `blocked: ${verdict.reasons.map((r) => r.code).join(", ")}`;
}

/** Incident decisions compared by what they decided, not by the ids and times replicas chose. */
function incidentSummary(message: Envelope): string | null {
  switch (message.type) {
    case "incidents.opened":
      return `opened ${message.data.origin} incident on ${message.data.slo ?? "policy"}: ${message.data.severity} ${message.data.class}`;
    case "incidents.escalated":
      return `escalated to ${message.data.class} (${message.data.severity})`;
    case "incidents.transitioned":
      return message.data.actor === "system" && message.data.to === "resolved"
        ? "resolved by the system"
        : null;
    default:
      return null;
  }
}

/** Recorded transitions the decisions do not make themselves: people's moves and mitigations. */
function isOutsideInput(message: Envelope): message is Envelope<"incidents.transitioned"> {
  return message.type === "incidents.transitioned" && incidentSummary(message) === null;
}

function timeOf(message: Envelope): string {
  switch (message.type) {
    case "budget.evaluated":
    case "governance.verdict":
    case "metrics.snapshot":
      return message.data.evaluatedAt;
    case "incidents.transitioned":
    case "governance.freeze-lifted":
      return message.data.at;
    case "governance.freeze-opened":
      return message.data.from;
    default:
      return message.time;
  }
}

/**
 * Re-derives one service's decisions from its recorded history (in stream order) and lists them
 * beside the recorded ones: budget evaluations from SLI snapshots, incident openings, escalations
 * and automatic resolutions from evaluations and verdicts (people's transitions and mitigations
 * are replayed as inputs), and promotion verdicts from evaluations and freezes. Messages before
 * index `compareFrom` only warm the state up: their decisions are not listed.
 */
export function replayService(
  history: readonly Envelope[],
  policy: ReplayPolicy,
  compareFrom = 0,
): ReplayResult {
  const counted = (index: number) => index >= compareFrom;
  const recorded: ReplayDecision[] = [];
  const derived: ReplayDecision[] = [];

  // Budget: every snapshot re-evaluated; compared with the evaluation recorded for it.
  const evaluations = new Map<string, Envelope<"budget.evaluated">>();
  for (const message of history) {
    if (message.type === "budget.evaluated") evaluations.set(message.data.snapshotId, message);
  }
  for (const [index, message] of history.entries()) {
    if (message.type !== "metrics.snapshot" || !counted(index)) continue;
    const { data } = message;
    const again = evaluateSlo(
      { objective: data.objective, window: data.sloWindow, minEvents: data.minEvents },
      data.windows,
      policy.burnRules,
    );
    const cause = message.id;
    derived.push({
      kind: "budget",
      at: data.evaluatedAt,
      cause,
      summary: budgetSummary(data.slo, again),
    });
    const stored = evaluations.get(cause);
    if (stored !== undefined) {
      recorded.push({
        kind: "budget",
        at: data.evaluatedAt,
        cause,
        summary: budgetSummary(stored.data.slo, stored.data),
        messageId: stored.id,
      });
    }
  }

  // Incidents and verdicts: evaluations, verdicts, freezes and outside transitions folded in order.
  let incidents: ServiceIncidentState = EMPTY_SERVICE_STATE;
  let slos: Record<string, SloStatus> = {};
  let freezes: FreezeWindow[] = [];
  let lastVerdict: string | null = null;
  let n = 0;
  const newId = () => `REPLAY-${++n}`;
  for (const [index, message] of history.entries()) {
    const at = timeOf(message);
    const summary = incidentSummary(message);
    if (summary !== null && counted(index)) {
      recorded.push({
        kind: "incident",
        at,
        cause: message.causationId ?? message.id,
        summary,
        messageId: message.id,
      });
    }
    if (
      message.type === "governance.verdict" &&
      counted(index) &&
      !message.data.causeId.startsWith("policy.start:")
    ) {
      recorded.push({
        kind: "verdict",
        at,
        cause: at,
        summary: verdictSummary(message.data),
        messageId: message.id,
      });
    }

    let decision = null;
    if (message.type === "budget.evaluated") {
      const { data } = message;
      decision = decideIncident(
        incidents,
        {
          id: message.id,
          service: message.service,
          slo: data.slo,
          objective: data.objective,
          severity: data.severity,
          evaluatedAt: data.evaluatedAt,
        },
        policy.incident,
        newId,
      );
      const folded = withEvaluation(slos, data);
      if (folded !== undefined) {
        slos = folded;
        const verdict = gateVerdict({
          ...policy.gate,
          slos: Object.values(slos),
          freezes,
          now: data.evaluatedAt,
        });
        const text = verdictSummary(verdict);
        if (text !== lastVerdict && counted(index)) {
          derived.push({ kind: "verdict", at, cause: at, summary: text });
        }
        lastVerdict = text;
      }
    } else if (message.type === "governance.verdict") {
      decision = decidePolicyIncident(
        incidents,
        {
          id: message.id,
          service: message.service,
          reasons: message.data.reasons,
          evaluatedAt: message.data.evaluatedAt,
        },
        newId,
      );
      if (message.data.causeId.startsWith("policy.start:"))
        lastVerdict = verdictSummary(message.data);
    } else if (message.type === "governance.freeze-opened") {
      const { data } = message;
      freezes = [
        ...freezes.filter((f) => f.id !== data.freezeId),
        {
          id: data.freezeId,
          from: data.from,
          until: data.until,
          reason: data.reason,
          origin: data.origin,
        },
      ];
    } else if (message.type === "governance.freeze-lifted") {
      freezes = freezes.map((f) =>
        f.id === message.data.freezeId ? { ...f, until: message.data.at } : f,
      );
    } else if (isOutsideInput(message) && incidents.incident !== null) {
      const { data } = message;
      const moved = transitionIncident(incidents.incident, {
        to: data.to,
        initiator: data.actor === "system" ? "system" : "human",
        actor: data.actor,
        reason: data.reason,
        at: data.at,
        ...(data.link === undefined ? {} : { link: data.link }),
      });
      if (moved.ok) incidents = { ...incidents, incident: moved.incident };
    }
    if (decision?.changed === true) {
      incidents = decision.state;
      for (const event of decision.events) {
        const text =
          event.kind === "opened"
            ? `opened ${event.incident.origin} incident on ${event.incident.slo ?? "policy"}: ${event.incident.severity} ${event.incident.class}`
            : event.kind === "escalated"
              ? `escalated to ${event.incident.class} (${event.incident.severity})`
              : event.transition.to === "resolved" && event.transition.actor === "system"
                ? "resolved by the system"
                : null;
        if (text !== null && counted(index))
          derived.push({ kind: "incident", at, cause: message.id, summary: text });
      }
    }
  }
  return { recorded, derived };
}

/**
 * The first place recorded and derived decisions differ, comparing each kind in its own order
 * (the kinds interleave differently when replicas ran concurrently); null when identical.
 */
export function firstDifference(result: ReplayResult): ReplayDifference | null {
  for (const kind of ["budget", "incident", "verdict"] as const) {
    const recorded = result.recorded.filter((d) => d.kind === kind);
    const derived = result.derived.filter((d) => d.kind === kind);
    for (let index = 0; index < Math.max(recorded.length, derived.length); index++) {
      const left = recorded[index] ?? null;
      const right = derived[index] ?? null;
      if (left?.summary !== right?.summary) return { index, recorded: left, derived: right };
    }
  }
  return null;
}

/** Decisions one policy makes and another would not (what-if), by kind and position. */
export function changedDecisions(
  before: readonly ReplayDecision[],
  after: readonly ReplayDecision[],
): { readonly before: ReplayDecision | null; readonly after: ReplayDecision | null }[] {
  const changes: { before: ReplayDecision | null; after: ReplayDecision | null }[] = [];
  for (const kind of ["budget", "incident", "verdict"] as const) {
    const left = before.filter((d) => d.kind === kind);
    const right = after.filter((d) => d.kind === kind);
    for (let index = 0; index < Math.max(left.length, right.length); index++) {
      const a = left[index] ?? null;
      const b = right[index] ?? null;
      if (a?.summary !== b?.summary) changes.push({ before: a, after: b });
    }
  }
  return changes;
}
