import { z } from "zod";
import {
  Actor,
  BudgetStatus,
  Burn,
  GateReason,
  GateVerdictKind,
  IncidentClass,
  IncidentOrigin,
  IncidentState,
  ProposalKind,
  ProposalState,
  Severity,
} from "./domain.js";
import { ProposalPlan } from "./plans.js";
import { NotificationDelivered, NotificationFailed } from "./notifications.js";
import { Duration, HttpUrl, ResourceName, Timestamp } from "./primitives.js";

const Count = z.number().nonnegative();
const Ratio = z.number();
const Id = z.string().min(1).max(256);

/** One window of one SLI: the rendered queries and what Prometheus returned for them. */
export const SliWindow = z.object({
  window: Duration,
  errorQuery: z.string(),
  totalQuery: z.string(),
  /** `null` when the series is missing or the value was NaN/Inf. */
  errors: Count.nullable(),
  total: Count.nullable(),
  /** `unknown` when a query failed: an error, never a verdict. */
  status: z.enum(["ok", "no-data", "unknown"]),
  error: z.string().optional(),
});
export type SliWindow = z.infer<typeof SliWindow>;

/** One burn-rate rule of the policy as it was applied, with what it measured. */
export const AppliedBurnRule = z.object({
  severity: z.enum(["fast-burn", "slow-burn"]),
  factor: z.number().positive(),
  long: Duration,
  short: Duration,
  longBurnRate: Ratio.nullable(),
  shortBurnRate: Ratio.nullable(),
  fired: z.boolean(),
});
export type AppliedBurnRule = z.infer<typeof AppliedBurnRule>;

/**
 * The burn and budget an evaluation recorded before they were carried apart (older messages),
 * derived from its severity: the history stays readable, and new messages always carry both.
 */
function withBurnAndBudget(data: unknown): unknown {
  if (typeof data !== "object" || data === null || "burn" in data) return data;
  const { severity, budgetRemaining } = data as { severity?: unknown; budgetRemaining?: unknown };
  // An exhausted evaluation did not say how fast it burned.
  const burn = severity === "exhausted" ? "unknown" : severity;
  const budget =
    typeof budgetRemaining !== "number" ? null : budgetRemaining <= 0 ? "exhausted" : "ok";
  return { ...data, burn, budget };
}

/** A verdict recorded before the gate was three-valued: allowed was pass, anything else block. */
function withVerdictKind(data: unknown): unknown {
  if (typeof data !== "object" || data === null || "verdict" in data) return data;
  const { allowed } = data as { allowed?: unknown };
  return { ...data, verdict: allowed === true ? "pass" : "block", evidenceAge: null, evidence: [] };
}

/** The snapshot of one SLO: its target, and the SLI values per window at `evaluatedAt`. */
export const SloSnapshot = z.object({
  slo: ResourceName,
  objective: z.number().gt(0).lt(100),
  sloWindow: Duration,
  minEvents: z.number().int().nonnegative(),
  mode: z.enum(["direct", "recorded"]),
  /** The time the evidence describes (the query time), not the publish time. */
  evaluatedAt: Timestamp,
  windows: z.array(SliWindow),
});
export type SloSnapshot = z.infer<typeof SloSnapshot>;

/** The error budget and burn-rate severity of one SLO at `evaluatedAt`. */
export const EvaluatedSlo = z.preprocess(
  withBurnAndBudget,
  z.object({
    slo: ResourceName,
    evaluatedAt: Timestamp,
    objective: z.number().gt(0).lt(100),
    /** The contract's one word: `exhausted` when the budget is spent, else the burn. */
    severity: Severity,
    /** The burn alone: what opens and resolves incidents. */
    burn: Burn,
    /** The budget alone (null when it could not be measured): what the gate's margin reads. */
    budget: BudgetStatus.nullable(),
    /** Fraction of the budget left over the SLO window; negative once overspent. */
    budgetRemaining: Ratio.nullable(),
    errorRatio: Ratio.nullable(),
    burnRates: z.array(
      z.object({ window: Duration, errorRatio: Ratio.nullable(), burnRate: Ratio.nullable() }),
    ),
    rules: z.array(AppliedBurnRule),
    explanation: z.string(),
    /** The rendered queries and the values they returned: the verdict explains itself. */
    windows: z.array(SliWindow),
  }),
);
export type EvaluatedSlo = z.infer<typeof EvaluatedSlo>;

/** Every SLO of a service-wide message describes its moment, and each SLO appears once. */
function sameMomentDistinctSlos(
  data: { evaluatedAt: string; slos: readonly { slo: string; evaluatedAt: string }[] },
  context: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  for (const [index, slo] of data.slos.entries()) {
    if (slo.evaluatedAt !== data.evaluatedAt) {
      context.addIssue({
        code: "custom",
        path: ["slos", index, "evaluatedAt"],
        message: `must equal the message's evaluatedAt ${data.evaluatedAt}`,
      });
    }
    if (seen.has(slo.slo)) {
      context.addIssue({
        code: "custom",
        path: ["slos", index, "slo"],
        message: `${slo.slo} appears twice`,
      });
    }
    seen.add(slo.slo);
  }
}

/**
 * A snapshot or evaluation recorded when each message held one SLO (older messages): read as a
 * service-wide message of that one SLO, so the history stays readable.
 */
function asServiceWide(data: unknown): unknown {
  if (typeof data !== "object" || data === null || !("slo" in data)) return data;
  const { snapshotId, ...slo } = data as { snapshotId?: unknown; evaluatedAt?: unknown };
  return {
    ...(snapshotId === undefined ? {} : { snapshotId }),
    evaluatedAt: slo.evaluatedAt,
    slos: [slo],
  };
}

/** The commit a rollback reverts, and why that one: what the approver approves. */
export const RevertTarget = z.object({
  commit: z.string(),
  author: z.string(),
  committedAt: Timestamp,
  subject: z.string(),
  why: z.string(),
});
export type RevertTarget = z.infer<typeof RevertTarget>;

/**
 * Why a rollback would re-apply harm (DESIGN.md invariant 11), so a person must look instead:
 * the latest change is SafeDeploy's own rollback, it created or deleted the service's whole path,
 * or it landed after the burn began (it cannot be the cause).
 */
export const RollbackHarm = z.enum([
  "own-rollback",
  "path-created",
  "path-deleted",
  "newer-than-burn",
]);
export type RollbackHarm = z.infer<typeof RollbackHarm>;

/** The newest evaluation of one SLO a verdict was judged on. */
export const VerdictEvidence = z.object({ slo: ResourceName, evaluatedAt: Timestamp });
export type VerdictEvidence = z.infer<typeof VerdictEvidence>;

/** Event payloads by type. The type's first segment names its stream's domain. */
export const EVENT_DATA = {
  /** A poll job: one per (scope, interval), so two schedulers produce it once. */
  "metrics.poll-requested": z.object({
    intervalStart: Timestamp,
    intervalEnd: Timestamp,
    mode: z.enum(["direct", "recorded"]),
  }),
  /**
   * SLI values of every SLO of one service at one evaluation time, per window: one message per
   * service and interval, so a fleet's poll is a message per service, not per SLO.
   */
  "metrics.snapshot": z.preprocess(
    asServiceWide,
    z
      .object({
        /** The time the evidence describes (the query time), not the publish time. */
        evaluatedAt: Timestamp,
        slos: z.array(SloSnapshot).min(1),
      })
      .superRefine(sameMomentDistinctSlos),
  ),
  /** Error budget and burn-rate severity of every SLO of one service, derived from one snapshot. */
  "budget.evaluated": z.preprocess(
    asServiceWide,
    z
      .object({
        snapshotId: Id,
        evaluatedAt: Timestamp,
        slos: z.array(EvaluatedSlo).min(1),
      })
      .superRefine(sameMomentDistinctSlos),
  ),
  "incidents.opened": z.object({
    incidentId: Id,
    /** `slo`: opened by a burning SLO; `policy`: by a structural policy violation. */
    origin: IncidentOrigin,
    severity: Severity,
    class: IncidentClass,
    slo: ResourceName.nullable(),
    openedAt: Timestamp,
    /** The evaluation (or policy verdict) that opened it. */
    causeId: Id,
    reason: z.string(),
    /**
     * Since when the service has burned without a break (the first burning evaluation): a
     * change committed after it cannot be the cause, so a rollback never reverts one.
     */
    burnBegan: Timestamp.optional(),
  }),
  "incidents.transitioned": z.object({
    incidentId: Id,
    from: IncidentState,
    to: IncidentState,
    at: Timestamp,
    actor: Actor,
    reason: z.string(),
    link: HttpUrl.optional(),
  }),
  "incidents.escalated": z.object({
    incidentId: Id,
    severity: Severity,
    class: IncidentClass,
    previousClass: IncidentClass,
    at: Timestamp,
    causeId: Id,
  }),
  /**
   * The promotion verdict of a service, published when it changes: on new evidence, a freeze or
   * guard, or on the policy service's clock (`causeId` `policy.clock:…`: evidence went stale, a
   * freeze ended).
   */
  "governance.verdict": z.preprocess(
    withVerdictKind,
    z.object({
      allowed: z.boolean(),
      verdict: GateVerdictKind,
      reasons: z.array(GateReason),
      evaluatedAt: Timestamp,
      causeId: Id,
      /** Seconds from the oldest SLO's newest evaluation to `evaluatedAt`; null without any. */
      evidenceAge: z.number().nullable(),
      /** The newest evaluation of each SLO the verdict was judged on. */
      evidence: z.array(VerdictEvidence),
    }),
  ),
  /**
   * A release train's guard failed for a service (a fatal check, a regression, a failed
   * follow-up): its gate blocks (`release-guard-failed`) until the revert is executed or an
   * approver clears it.
   */
  "governance.guard-failed": z.object({
    guardId: Id,
    train: ResourceName,
    trainId: Id,
    /** Counted from 0, as in the train's state; null for a failure of the whole train. */
    step: z.number().int().nonnegative().nullable(),
    reason: z.string(),
    evidence: z.array(z.string()),
    at: Timestamp,
  }),
  "governance.guard-cleared": z.object({
    guardId: Id,
    at: Timestamp,
    actor: Actor,
    reason: z.string(),
    /** `revert`: the service's rollback was executed; `person`: an approver cleared it. */
    by: z.enum(["revert", "person"]),
  }),
  /** A service entered a canary step: traffic weight `weight` since `since`. */
  "governance.canary-step": z.object({
    weight: z.number().int().min(0).max(100),
    since: Timestamp,
    actor: Actor,
    reason: z.string(),
  }),
  /** A canary step stayed healthy (gate allowed) for its bake time: promotion may go on. */
  "governance.canary-healthy": z.object({
    weight: z.number().int().min(0).max(100),
    next: z.number().int().min(1).max(100),
    since: Timestamp,
    bakeTime: Duration,
    evaluatedAt: Timestamp,
    causeId: Id,
  }),
  "governance.freeze-opened": z.object({
    freezeId: Id,
    from: Timestamp,
    until: Timestamp,
    reason: z.string(),
    actor: Actor,
    origin: z.enum(["manual", "exhaustion"]),
  }),
  /** An admin overrode the service's recurring freeze windows until `until` (emergency). */
  "governance.freeze-overridden": z.object({
    overrideId: Id,
    from: Timestamp,
    until: Timestamp,
    actor: Actor,
    reason: z.string(),
    /** The recurring windows that froze the service then. */
    windows: z.array(z.string()),
  }),
  "governance.freeze-lifted": z.object({
    freezeId: Id,
    at: Timestamp,
    actor: Actor,
    reason: z.string(),
  }),
  "governance.proposal-created": z.object({
    proposalId: Id,
    kind: ProposalKind,
    incidentId: Id.nullable(),
    causeId: Id,
    createdAt: Timestamp,
    summary: z.string(),
    /** Inert: what approval would do, one of the kind's plans. */
    plan: ProposalPlan,
  }),
  "governance.proposal-approved": z.object({
    proposalId: Id,
    by: Actor,
    at: Timestamp,
    reason: z.string(),
    approvals: z.number().int().positive(),
    required: z.number().int().positive(),
    /** True once `required` distinct approvers have approved. */
    approved: z.boolean(),
  }),
  "governance.proposal-rejected": z.object({
    proposalId: Id,
    by: Actor,
    at: Timestamp,
    reason: z.string(),
  }),
  "governance.proposal-superseded": z.object({
    proposalId: Id,
    supersededBy: Id.nullable(),
    at: Timestamp,
    reason: z.string(),
  }),
  /** An approved proposal handed to the git actuator: the only trigger for a Git write. */
  "governance.action-requested": z.object({
    proposalId: Id,
    kind: ProposalKind,
    incidentId: Id.nullable(),
    requestedAt: Timestamp,
    plan: ProposalPlan,
    /**
     * Never true: a dry run is a `governance.preview-requested` (an older preview carrying
     * `dryRun: true` is refused, never taken for an approved action).
     */
    dryRun: z.literal(false).optional(),
  }),
  /**
   * What approving would push, asked of the git actuator: a proposal's preview, or a release
   * train's dry run. It computes the diff and pushes nothing.
   */
  "governance.preview-requested": z.object({
    proposalId: Id,
    kind: ProposalKind,
    incidentId: Id.nullable(),
    requestedAt: Timestamp,
    plan: ProposalPlan,
  }),
  "governance.action-completed": z.object({
    proposalId: Id,
    /** The incident the action answers, which it moves to mitigated. */
    incidentId: Id.nullable(),
    kind: ProposalKind,
    at: Timestamp,
    branch: z.string(),
    commit: z.string(),
    prUrl: HttpUrl.nullable(),
    diff: z.string(),
    dryRun: z.boolean(),
    /** For a revert: the commit reverted and why that one. */
    target: RevertTarget.optional(),
  }),
  "governance.action-failed": z.object({
    proposalId: Id,
    at: Timestamp,
    reason: z.string(),
    /** Ambiguity a human must resolve; nothing was pushed. */
    needsTriage: z.boolean(),
    state: ProposalState,
    /** A dry run (a preview) failed: nothing about the proposal itself changes. */
    dryRun: z.boolean().optional(),
    /** The repo already is as the action asks: there was nothing to commit. */
    unchanged: z.boolean().optional(),
    /**
     * A revert refused because it would re-apply harm: the proposal needs triage even when
     * only its preview found it, and nothing is ever pushed for it.
     */
    harm: RollbackHarm.optional(),
    /** For a revert: the commit it would have reverted. */
    target: RevertTarget.optional(),
  }),
  "governance.train-started": z.object({
    trainId: Id,
    train: ResourceName,
    at: Timestamp,
    dryRun: z.boolean(),
    steps: z.array(z.object({ service: ResourceName, change: z.string() })),
  }),
  "governance.train-step": z.object({
    trainId: Id,
    step: z.number().int().nonnegative(),
    /**
     * `awaiting-approval`: its promotion waits for the service's distinct approvers; `blocked`:
     * its gate did not pass, nothing was pushed; `rejected`: its promotion was rejected.
     */
    phase: z.enum([
      "promoting",
      "awaiting-approval",
      "blocked",
      "rejected",
      "promoted",
      "deployed",
      "guarding",
      "checked",
    ]),
    at: Timestamp,
    commit: z.string().nullable(),
    outcome: z.enum(["ok", "warning", "fatal"]).nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
  "governance.train-finished": z.object({
    trainId: Id,
    at: Timestamp,
    outcome: z.enum(["completed", "halted", "needs-triage"]),
    reason: z.string(),
  }),
  /**
   * A train's release manifest: which service was promoted to what, when, with which commit
   * (built by core's manifest builder; published on every change, so the audit log keeps each).
   */
  "governance.train-manifest": z.object({
    trainId: Id,
    at: Timestamp,
    manifest: z.record(z.string(), z.unknown()),
  }),
  /**
   * A deploy event from outside (Argo CD / Argo Rollouts notifications, `POST /v1/deploys`, the
   * CLI): one per (app, revision, trigger, step), whatever reports it how often.
   */
  "governance.deploy-recorded": z.object({
    /** What reported it. */
    reporter: z.enum(["argocd", "argo-rollouts", "api", "cli"]),
    /** The Argo CD application or rollout name (the service is the envelope's). */
    app: z.string().min(1).max(253),
    /** The environment-repo revision (commit SHA) or image the deploy applied. */
    revision: z.string().min(1).max(200),
    trigger: z.enum([
      "on-deployed",
      "on-sync-failed",
      "on-rollout-step-completed",
      "on-rollout-completed",
      "on-rollout-aborted",
    ]),
    /** The rollout step index for step triggers, else null. */
    step: z.number().int().nonnegative().nullable(),
    /** When the tool says it happened. */
    at: Timestamp,
    /** When the revision was committed, when the reporter knows it (lead time for changes). */
    commitTime: Timestamp.nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
  "governance.follow-up": z.object({
    trainId: Id,
    dueAt: Timestamp,
    after: Duration,
    phase: z.enum(["scheduled", "passed", "failed"]),
    at: Timestamp,
    /** The step a failure was attributed to, when one could be. */
    attributedStep: z.number().int().nonnegative().nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
  /** The notifier delivered a notification (issue 17); recorded in the audit log. */
  "governance.notification-delivered": NotificationDelivered,
  /** One failed delivery attempt of a notification; `final` when the notifier gave up. */
  "governance.notification-failed": NotificationFailed,
} as const;

export type EventType = keyof typeof EVENT_DATA;
export const EVENT_TYPES = Object.keys(EVENT_DATA) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA)[T]>;

/** The envelope fields every stored message carries (DESIGN.md, "Streams"). */
export const EnvelopeHeader = z.object({
  /** Derived from the cause, and used as `Nats-Msg-Id`, so a redelivered cause dedups. */
  id: Id,
  schemaVersion: z.literal(1),
  /** The service the message is about; also the last subject token. */
  service: ResourceName,
  /** The component that produced it, e.g. `budget`. */
  source: z.string().min(1),
  time: Timestamp,
  causationId: Id.nullable(),
  correlationId: Id,
});

/** A typed message: envelope fields, its type and its payload. */
export type Envelope<T extends EventType = EventType> = {
  [K in T]: z.infer<typeof EnvelopeHeader> & { type: K; data: EventData<K> };
}[T];

const envelopeObjects = EVENT_TYPES.map((type) =>
  EnvelopeHeader.extend({ type: z.literal(type), data: EVENT_DATA[type] }),
);

const envelopeSchemas = Object.fromEntries(
  envelopeObjects.map((schema) => [schema.shape.type.value, schema]),
) as unknown as { [K in EventType]: z.ZodType<Envelope<K>> };

/** The schema of one event type's envelope. */
export function envelopeSchema<T extends EventType>(type: T): z.ZodType<Envelope<T>> {
  return envelopeSchemas[type];
}

/** Validates an envelope of any known type (what the audit service and replay read). */
export const AnyEnvelope = z.discriminatedUnion(
  "type",
  envelopeObjects as unknown as [
    (typeof envelopeObjects)[number],
    ...(typeof envelopeObjects)[number][],
  ],
) as unknown as z.ZodType<Envelope>;

/** What goes to DEADLETTER: the original message untouched, and why it could not be handled. */
export const DeadLetter = z.object({
  reason: z.string(),
  kind: z.enum(["invalid", "terminal", "exhausted"]),
  stream: z.string(),
  consumer: z.string(),
  subject: z.string(),
  streamSequence: z.number().int().nonnegative(),
  deliveryCount: z.number().int().nonnegative(),
  at: Timestamp,
  headers: z.record(z.string(), z.array(z.string())),
  /** The original payload, as UTF-8 text when it was text, else base64. */
  payload: z.string(),
  payloadEncoding: z.enum(["utf8", "base64"]),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

/** What a producer states about a new message; the envelope fills in the rest. */
export interface NewEvent<T extends EventType> {
  readonly type: T;
  /** Deterministic, derived from the cause (see {@link messageId}). */
  readonly id: string;
  readonly service: string;
  readonly data: EventData<T>;
}

/**
 * Wraps an event in its envelope. The causation id is the message it was derived from; the
 * correlation id is inherited from it, or starts a new chain (`correlationId`) at a root cause.
 */
export function createEnvelope<T extends EventType>(
  event: NewEvent<T>,
  context: {
    readonly source: string;
    readonly time: string;
    readonly causedBy?: { readonly id: string; readonly correlationId: string };
    readonly correlationId?: string;
  },
): Envelope<T> {
  return {
    id: event.id,
    type: event.type,
    schemaVersion: 1,
    service: event.service,
    source: context.source,
    time: context.time,
    causationId: context.causedBy?.id ?? null,
    correlationId: context.causedBy?.correlationId ?? context.correlationId ?? event.id,
    data: event.data,
  } as unknown as Envelope<T>;
}

/** A message id derived from its cause's parts, e.g. `budget.evaluated:checkout:availability:…`. */
export function messageId(type: string, ...parts: readonly (string | number)[]): string {
  return [type, ...parts].join(":");
}
