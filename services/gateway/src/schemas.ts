import {
  BudgetStatus,
  Burn,
  DeadLetter,
  FreezeView,
  GateReason,
  GateVerdictKind,
  GateView,
  GuardView,
  HttpUrl,
  IncidentState,
  IncidentView,
  ProposalState,
  ProposalView,
  ResourceName,
  RevertTarget,
  STREAMS,
  Severity,
  Timestamp,
} from "@safedeploy/schema";
import { z } from "zod";

/** The request and answer bodies of the HTTP API (CONTRACT.md, "HTTP API"). */

/**
 * Text a person typed, as stored by the services: PostgreSQL text holds no NUL and the audit log
 * is read by people, so control characters other than tab and newline are refused here.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const Reason = z
  .string()
  .trim()
  .min(1, { message: "a reason is required" })
  .max(2000)
  .refine((text) => !CONTROL.test(text), {
    message: "must not contain NUL or other control characters",
  });

/**
 * An identifier of an incident, proposal or train (`INC-…`, `PRP-…`, `TRN-…-s1`, or a ULID):
 * letters and digits joined by `.`, `_` or `-`, which a JetStream KV key and PostgreSQL text both
 * take, so anything else is refused here (400) rather than downstream (500).
 */
/** No two separators in a row, none at the end (a KV key cannot hold `..` or end with `.`). */
const IDENTIFIER_JOINS = /^(?!.*[._-]{2})(?!.*[._-]$)/;
export const Identifier = z
  .string()
  .min(1, { message: "an id is required" })
  .max(200, { message: "must be at most 200 characters" })
  .refine((id) => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) && IDENTIFIER_JOINS.test(id), {
    message: "must be letters and digits joined by single '.', '_' or '-' (e.g. INC-1A2B3C)",
  });

export const ReasonBody = z.object({ reason: Reason });

export const TransitionBody = z.object({
  to: IncidentState,
  reason: Reason,
  link: HttpUrl.optional(),
});

export const FreezeBody = z.object({
  service: ResourceName,
  until: Timestamp,
  reason: Reason,
  from: Timestamp.optional(),
});

export const LiftBody = z.object({ reason: Reason }).nullish();

export const ServiceParams = z.object({ name: ResourceName });
export const FreezeParams = z.object({ service: ResourceName });
export const IdParams = z.object({ id: Identifier });

/** `?limit=&cursor=` of every list. */
export const Page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z
    .string()
    .min(1)
    .max(500)
    .regex(/^[A-Za-z0-9_-]+$/, { message: "not a cursor this API issued" })
    .optional(),
});

export const IncidentQuery = Page.extend({
  service: ResourceName.optional(),
  state: IncidentState.optional(),
});
export const DeadLetterQuery = Page.extend({
  stream: z.enum(STREAMS).optional(),
});
export const ProposalQuery = Page.extend({
  service: ResourceName.optional(),
  state: ProposalState.optional(),
});

/** `{ items, next }` of every list; `next` is the cursor of the following page. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}

export const Incident = IncidentView.extend({
  slo: z.string().nullable().optional(),
  causeId: z.string().optional(),
  reason: z.string().optional(),
}).meta({ id: "Incident" });

export const Proposal = ProposalView.extend({
  summary: z.string().optional(),
  plan: z.record(z.string(), z.unknown()).optional(),
  dryRun: z.boolean().nullable().optional(),
  failure: z
    .object({ reason: z.string(), needsTriage: z.boolean(), at: Timestamp })
    .nullable()
    .optional(),
  target: RevertTarget.optional(),
}).meta({ id: "Proposal" });

export const Guard = GuardView.meta({ id: "Guard" });
export const GuardQuery = Page.extend({
  service: ResourceName.optional(),
  all: z
    .enum(["true", "false"])
    .default("false")
    .describe("true: cleared guards too; default: only those blocking now"),
});
export const GuardParams = z.object({ service: ResourceName });
export const Cleared = z.object({ cleared: z.array(Guard) });

export const Freeze = FreezeView.extend({
  liftedAt: Timestamp.nullable().optional(),
}).meta({ id: "Freeze" });

export const Gate = GateView.meta({ id: "Gate" });

export const SloState = z.object({
  slo: z.string(),
  severity: Severity,
  burn: Burn.nullable(),
  budget: BudgetStatus.nullable(),
  budgetRemaining: z.number().nullable(),
  errorRatio: z.number().nullable(),
  objective: z.number(),
  explanation: z.string(),
  evaluatedAt: Timestamp,
  messageId: z.string(),
});

/** The last published verdict, as the read model holds it. */
export const Verdict = z.object({
  allowed: z.boolean(),
  verdict: GateVerdictKind,
  reasons: z.array(GateReason).readonly(),
  evaluatedAt: Timestamp,
  evidenceAge: z.number().nullable(),
});

export const ServiceState = z
  .object({
    name: z.string(),
    severity: Severity.nullable(),
    budgetRemaining: z.number().nullable(),
    slos: z.array(SloState).readonly(),
    activeIncident: z.string().nullable(),
    gate: Verdict.nullable(),
  })
  .meta({ id: "ServiceState" });

export const ServiceSummary = ServiceState.extend({
  owner: z.string().nullable(),
  inCatalog: z.boolean(),
}).meta({ id: "ServiceSummary" });

export const ServiceDetail = ServiceSummary.extend({
  spec: z.record(z.string(), z.unknown()).nullable(),
  policy: z.record(z.string(), z.unknown()).nullable(),
  incident: Incident.nullable(),
  freezes: z.array(Freeze),
  /** Failed release-train guards blocking it now. */
  guards: z.array(Guard),
  /** Asked of the policy service now; the last published verdict when it does not answer. */
  gate: Verdict.extend({ service: z.string(), live: z.boolean() }).nullable(),
}).meta({ id: "ServiceDetail" });

export const Snapshot = z
  .object({
    at: Timestamp,
    services: z.array(ServiceState).readonly(),
    incidents: z.array(Incident).readonly(),
    proposals: z.array(Proposal).readonly(),
    freezes: z.array(Freeze).readonly(),
    guards: z.array(Guard).readonly(),
    blocked: z.array(z.string()).readonly(),
  })
  .meta({ id: "Snapshot" });

/** How many services are in each state: the lean snapshot's stand-in for the services array. */
export const SnapshotTotals = z.object({
  services: z.number().int().nonnegative(),
  /** Services by their worst severity; `none` for those not evaluated yet. */
  bySeverity: z.record(z.string(), z.number().int().nonnegative()),
  blocked: z.number().int().nonnegative(),
  activeIncidents: z.number().int().nonnegative(),
  openProposals: z.number().int().nonnegative(),
  freezes: z.number().int().nonnegative(),
  guards: z.number().int().nonnegative(),
});

/**
 * The snapshot for large fleets: totals instead of every service's SLO states (page through
 * `/v1/services` for those), with the short lists as they are.
 */
export const SnapshotSummary = Snapshot.omit({ services: true })
  .extend({ view: z.literal("summary"), totals: SnapshotTotals })
  .meta({ id: "SnapshotSummary" });
export type SnapshotSummary = z.infer<typeof SnapshotSummary>;

/**
 * The lean form of a full snapshot. `declared` are the catalog's services: those not evaluated
 * yet are in no snapshot, yet they are services of the fleet (counted under `none`).
 */
export function summarizeSnapshot(
  full: z.infer<typeof Snapshot>,
  declared: readonly string[],
): SnapshotSummary {
  const bySeverity: Record<string, number> = {};
  const seen = new Set<string>();
  for (const service of full.services) {
    seen.add(service.name);
    const severity = service.severity ?? "none";
    bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
  }
  const unevaluated = declared.filter((name) => !seen.has(name)).length;
  if (unevaluated > 0) bySeverity.none = (bySeverity.none ?? 0) + unevaluated;
  const { services, ...rest } = full;
  return {
    ...rest,
    view: "summary",
    totals: {
      services: services.length + unevaluated,
      bySeverity,
      blocked: full.blocked.length,
      activeIncidents: full.incidents.length,
      openProposals: full.proposals.length,
      freezes: full.freezes.length,
      guards: full.guards.length,
    },
  };
}

const EvidenceSource = z.object({
  stream: z.string(),
  seq: z.number(),
  position: z.number(),
  messageId: z.string().nullable(),
  type: z.string().nullable(),
  hash: z.string(),
});
const EvidencePart = z.object({
  items: z.array(z.unknown()).readonly(),
  sources: z.array(EvidenceSource).readonly(),
});

export const Evidence = z
  .object({
    incidentId: z.string(),
    service: z.string(),
    decision: EvidencePart,
    slo: EvidencePart,
    budget: EvidencePart,
    proposal: EvidencePart,
    approval: EvidencePart,
    resolution: EvidencePart,
  })
  .meta({ id: "EvidenceBundle" });

export const ChainReport = z.object({
  intact: z.boolean(),
  rows: z.number().int(),
  firstBad: z
    .object({
      stream: z.string(),
      seq: z.number(),
      position: z.number(),
      problem: z.enum(["edited", "missing", "reordered", "truncated"]),
      detail: z.string(),
    })
    .nullable(),
  /** The streams whose newest rows were checked against what JetStream says was stored. */
  anchored: z.array(z.string()),
});

export const Lifted = z.object({ lifted: z.array(Freeze) });

export const EventsQuery = z.object({
  types: z
    .string()
    .max(2000)
    .regex(/^[A-Za-z0-9._,\s-]*$/, { message: "must be comma-separated message types" })
    .optional()
    .describe("comma-separated message types to deliver, e.g. incidents.opened,budget.evaluated"),
  from: z
    .enum(["now", "start"])
    .default("now")
    .describe("without Last-Event-ID: start at new messages (now) or replay the whole log (start)"),
  access_token: z
    .string()
    .max(1000)
    .optional()
    .describe("the bearer token, for clients that cannot set headers (EventSource)"),
});

/** A message of DEADLETTER: the dead letter, or what arrived there when it is not one. */
export const DeadLetterItem = z
  .object({
    seq: z.number().int().positive(),
    storedAt: Timestamp,
    letter: DeadLetter.nullable(),
    unreadable: z.unknown(),
  })
  .meta({ id: "DeadLetter" });
