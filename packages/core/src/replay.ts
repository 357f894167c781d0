import type { Envelope } from "@safedeploy/schema";
import { evaluateSnapshot } from "./budget.js";
import type { BurnRule } from "./budget.js";
import { decideExhaustionFreeze, gateVerdict, withEvaluations } from "./gate.js";
import type { FreezeWindow, GateInput, ReleaseGuard, SloStatus } from "./gate.js";
import { transitionIncident } from "./incident.js";
import { EMPTY_SERVICE_STATE, decideIncidentOnEvaluation } from "./incident-decision.js";
import type {
  IncidentDecisionEvent,
  IncidentPolicy,
  ServiceIncidentState,
} from "./incident-decision.js";
import { decidePolicyIncident } from "./policy-incident.js";

/** What the recorded decisions of one service were made under. */
export interface ReplayPolicy {
  readonly burnRules: readonly BurnRule[];
  readonly incident: IncidentPolicy;
  readonly gate: Pick<GateInput, "service" | "policy">;
  /** How long an exhausted budget freezes promotions (`freezeOnExhaustion`). */
  readonly freezeOnExhaustionMs: number;
}

/** The kinds of decision replay re-derives and compares, each in its own order. */
export const REPLAY_KINDS = ["budget", "incident", "freeze", "verdict"] as const;
export type ReplayKind = (typeof REPLAY_KINDS)[number];

/** One decision, reduced to what must be reproduced: `summary` is what is compared. */
export interface ReplayDecision {
  readonly kind: ReplayKind;
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

/** The cause id prefix of a verdict the policy service published on its own clock. */
export const CLOCK_CAUSE_PREFIX = "policy.clock:";
/** The cause id prefix of a verdict the policy service published when it started. */
export const START_CAUSE_PREFIX = "policy.start:";

const round = (value: number | null) => (value === null ? "null" : value.toFixed(6));

function budgetSummary(
  slo: string,
  evaluation: {
    readonly severity: string;
    readonly burn: string;
    readonly budget: string | null;
    readonly budgetRemaining: number | null;
    readonly explanation: string;
  },
): string {
  return `${slo}: ${evaluation.severity} (burn ${evaluation.burn}, budget ${evaluation.budget ?? "unmeasured"}), budget ${round(evaluation.budgetRemaining)} (${evaluation.explanation})`;
}

function verdictSummary(verdict: {
  readonly verdict: string;
  readonly reasons: readonly { readonly code: string }[];
}) {
  return verdict.verdict === "pass"
    ? "pass"
    : `${verdict.verdict}: ${verdict.reasons.map((r) => r.code).join(", ")}`;
}

function freezeSummary(freeze: Pick<FreezeWindow, "from" | "until">): string {
  return `exhaustion freeze from ${freeze.from} until ${freeze.until}`;
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

function decidedIncidentSummary(event: IncidentDecisionEvent): string | null {
  switch (event.kind) {
    case "opened":
      return `opened ${event.incident.origin} incident on ${event.incident.slo ?? "policy"}: ${event.incident.severity} ${event.incident.class}`;
    case "escalated":
      return `escalated to ${event.incident.class} (${event.incident.severity})`;
    case "transitioned":
      return event.transition.to === "resolved" && event.transition.actor === "system"
        ? "resolved by the system"
        : null;
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
    case "governance.guard-failed":
    case "governance.guard-cleared":
      return message.data.at;
    case "governance.freeze-opened":
      return message.data.from;
    default:
      return message.time;
  }
}

/** The budget decisions: every snapshot re-evaluated, beside the evaluation recorded for it. */
function replayBudgets(
  history: readonly Envelope[],
  policy: ReplayPolicy,
  counted: (index: number) => boolean,
  recorded: ReplayDecision[],
  derived: ReplayDecision[],
): void {
  const evaluations = new Map<string, Envelope<"budget.evaluated">>();
  for (const message of history) {
    if (message.type === "budget.evaluated") evaluations.set(message.data.snapshotId, message);
  }
  for (const [index, message] of history.entries()) {
    if (message.type !== "metrics.snapshot" || !counted(index)) continue;
    const again = evaluateSnapshot(
      message.data,
      policy.burnRules,
      policy.gate.service.safetyMargin,
    );
    const stored = evaluations.get(message.id);
    const storedSlos = new Map((stored?.data.slos ?? []).map((slo) => [slo.slo, slo]));
    for (const evaluation of again) {
      const at = evaluation.evaluatedAt;
      const cause = `${message.id}#${evaluation.slo}`;
      derived.push({
        kind: "budget",
        at,
        cause,
        summary: budgetSummary(evaluation.slo, evaluation),
      });
      const recordedSlo = storedSlos.get(evaluation.slo);
      if (stored !== undefined && recordedSlo !== undefined) {
        recorded.push({
          kind: "budget",
          at,
          cause,
          summary: budgetSummary(recordedSlo.slo, recordedSlo),
          messageId: stored.id,
        });
      }
    }
  }
}

/**
 * What the policy service knew when it judged: the latest evaluation per SLO, and every one
 * folded so far (a clock verdict names the evaluations it was judged on, which may be older
 * than the latest when an evaluation arrived meanwhile).
 */
interface GateHistory {
  latest: Record<string, SloStatus>;
  readonly seen: Map<string, SloStatus[]>;
}

/**
 * How many of `sorted` (by evidence time) have evidence at or before `at`, counted from the
 * newest end: evidence mostly arrives in order, so this is short (a full sort per evaluation made
 * replay quadratic).
 */
const countUpTo = (sorted: readonly SloStatus[], at: string): number =>
  sorted.findLastIndex((s) => s.evaluatedAt <= at) + 1;

/** The SLO states a clock verdict was judged on, as its recorded evidence names them. */
function judgedOn(
  gates: GateHistory,
  evidence: readonly { readonly slo: string; readonly evaluatedAt: string }[],
): SloStatus[] {
  return evidence.flatMap(({ slo, evaluatedAt }) => {
    const seen = gates.seen.get(slo) ?? [];
    const newest = seen[countUpTo(seen, evaluatedAt) - 1];
    return newest === undefined ? [] : [newest];
  });
}

/**
 * Re-derives one service's decisions from its recorded history, in the order the services saw
 * it, and lists them beside the recorded ones: budget evaluations from SLI snapshots; incident
 * openings, escalations and automatic resolutions from evaluations and verdicts (people's
 * transitions and mitigations are inputs); exhaustion freezes from evaluations; and promotion
 * verdicts from evaluations, freezes (people's are inputs), release guards, and the policy
 * service's clock (its recorded clock verdicts say when it looked, and on which evidence).
 * Messages before index `compareFrom` only warm the state up: their decisions are not listed.
 */
export function replayService(
  history: readonly Envelope[],
  policy: ReplayPolicy,
  compareFrom = 0,
): ReplayResult {
  const counted = (index: number) => index >= compareFrom;
  const recorded: ReplayDecision[] = [];
  const derived: ReplayDecision[] = [];
  replayBudgets(history, policy, counted, recorded, derived);

  let incidents: ServiceIncidentState = EMPTY_SERVICE_STATE;
  const gates: GateHistory = { latest: {}, seen: new Map() };
  let freezes: FreezeWindow[] = [];
  let guards: ReleaseGuard[] = [];
  let lastVerdict: string | null = null;
  let lastVerdictAt = "";
  let n = 0;
  const newId = () => `REPLAY-${++n}`;

  // As the policy service: a change is published once, and never judged before the last one.
  const judge = (index: number, at: string, slos: readonly SloStatus[]) => {
    const text = verdictSummary(gateVerdict({ ...policy.gate, slos, freezes, guards, now: at }));
    if (text === lastVerdict || at < lastVerdictAt) return;
    if (counted(index)) derived.push({ kind: "verdict", at, cause: at, summary: text });
    lastVerdict = text;
    lastVerdictAt = at;
  };

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
      message.type === "governance.freeze-opened" &&
      message.data.origin === "exhaustion" &&
      counted(index)
    ) {
      recorded.push({
        kind: "freeze",
        at,
        cause: message.data.freezeId,
        summary: freezeSummary(message.data),
        messageId: message.id,
      });
    }
    const startup =
      message.type === "governance.verdict" && message.data.causeId.startsWith(START_CAUSE_PREFIX);
    if (message.type === "governance.verdict" && counted(index) && !startup) {
      recorded.push({
        kind: "verdict",
        at,
        cause: at,
        summary: verdictSummary(message.data),
        messageId: message.id,
      });
    }

    let decision = null;
    switch (message.type) {
      case "budget.evaluated": {
        const { data } = message;
        decision = decideIncidentOnEvaluation(
          incidents,
          { id: message.id, service: message.service, slos: data.slos },
          policy.incident,
          newId,
        );
        // As the policy service does: the exhaustion freeze first, then the verdict.
        const frozen = decideExhaustionFreeze(
          freezes,
          { service: message.service, evaluatedAt: data.evaluatedAt, slos: data.slos },
          policy.freezeOnExhaustionMs,
          (freeze) => freeze,
        );
        if (frozen.freezes !== undefined) {
          freezes = frozen.freezes;
          const opened = frozen.inForce;
          if (opened !== undefined && counted(index)) {
            derived.push({ kind: "freeze", at, cause: opened.id, summary: freezeSummary(opened) });
          }
        }
        const before = gates.latest;
        const folded = withEvaluations(before, data.slos);
        if (folded !== undefined) {
          gates.latest = folded;
          for (const { slo } of data.slos) {
            const status = folded[slo];
            // Unchanged (older than what was known): already seen.
            if (status === undefined || status === before[slo]) continue;
            const seen = gates.seen.get(slo) ?? [];
            // After those with the same time, where a stable sort after a push puts it.
            seen.splice(countUpTo(seen, status.evaluatedAt), 0, status);
            gates.seen.set(slo, seen);
          }
          judge(index, data.evaluatedAt, Object.values(gates.latest));
        }
        break;
      }
      case "governance.verdict": {
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
        // A restatement at start: the baseline, without moving the moment of the last change.
        if (startup) lastVerdict = verdictSummary(message.data);
        else if (message.data.causeId.startsWith(CLOCK_CAUSE_PREFIX)) {
          const seen = judgedOn(gates, message.data.evidence);
          judge(index, message.data.evaluatedAt, seen);
          // Evaluations stored before the tick that it had not seen yet: the policy service
          // judged them after it, when it consumed them.
          const unseen = Object.values(gates.latest).filter(
            (latest) =>
              !seen.some((s) => s.slo === latest.slo && s.evaluatedAt === latest.evaluatedAt),
          );
          const newest = unseen
            .map((s) => s.evaluatedAt)
            .sort()
            .at(-1);
          if (newest !== undefined) judge(index, newest, Object.values(gates.latest));
        }
        break;
      }
      case "governance.freeze-opened": {
        const { data } = message;
        if (data.origin === "exhaustion") break; // derived above, from the evaluation
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
        // Judged when it was made (the envelope's time), as the policy service does; one that
        // starts later takes effect at the clock verdict that saw it begin.
        judge(index, message.time, Object.values(gates.latest));
        break;
      }
      case "governance.freeze-lifted": {
        const { data } = message;
        freezes = freezes.map((f) => (f.id === data.freezeId ? { ...f, until: data.at } : f));
        judge(index, data.at, Object.values(gates.latest));
        break;
      }
      case "governance.guard-failed": {
        const { data } = message;
        guards = [
          ...guards.filter((g) => g.id !== data.guardId),
          {
            id: data.guardId,
            train: data.train,
            trainId: data.trainId,
            step: data.step,
            reason: data.reason,
            at: data.at,
            clearedAt: null,
          },
        ];
        judge(index, data.at, Object.values(gates.latest));
        break;
      }
      case "governance.guard-cleared": {
        const { data } = message;
        guards = guards.map((g) => (g.id === data.guardId ? { ...g, clearedAt: data.at } : g));
        judge(index, data.at, Object.values(gates.latest));
        break;
      }
      default:
        if (isOutsideInput(message) && incidents.incident !== null) {
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
    }
    if (decision?.changed === true) {
      incidents = decision.state;
      for (const event of decision.events) {
        const text = decidedIncidentSummary(event);
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
  for (const kind of REPLAY_KINDS) {
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
  for (const kind of REPLAY_KINDS) {
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
