import { SEVERITY_RANK } from "@safedeploy/core";
import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import type {
  FreezeView,
  GateReason,
  IncidentClass,
  IncidentState,
  IncidentView,
  ProposalKind,
  ProposalState,
  ProposalView,
  Severity,
} from "@safedeploy/schema";

const iso = (value: Date): string => value.toISOString();
const isoOrNull = (value: Date | null): string | null => (value === null ? null : iso(value));

/** The states in which an incident is active (one per service at most). */
export const ACTIVE_INCIDENT_STATES: readonly IncidentState[] = [
  "detected",
  "investigating",
  "mitigated",
];

interface IncidentRow {
  id: string;
  service: string;
  slo: string | null;
  state: IncidentState;
  severity: Severity;
  class: IncidentClass;
  opened_at: Date;
  updated_at: Date;
  cause_id: string;
  reason: string;
}

interface TransitionRow {
  incident_id: string;
  from_state: IncidentState | null;
  to_state: IncidentState;
  at: Date;
  actor: string;
  reason: string;
  link: string | null;
}

/** An incident as CONTRACT.md shows it, plus its SLO, cause and opening reason. */
export type IncidentRecord = IncidentView & {
  readonly slo: string | null;
  readonly causeId: string;
  readonly reason: string;
};

async function incidentsWhere(
  db: Queryable,
  where: string,
  params: readonly unknown[],
): Promise<IncidentRecord[]> {
  const rows = await query<IncidentRow>(
    db,
    `SELECT id, service, slo, state, severity, class, opened_at, updated_at, cause_id, reason
     FROM incidents ${where} ORDER BY opened_at DESC, id`,
    params,
  );
  if (rows.length === 0) return [];
  const transitions = await query<TransitionRow>(
    db,
    `SELECT incident_id, from_state, to_state, at, actor, reason, link FROM incident_transitions
     WHERE incident_id = ANY($1::text[]) ORDER BY at, to_state`,
    [rows.map((row) => row.id)],
  );
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    state: row.state,
    severity: row.severity,
    class: row.class,
    openedAt: iso(row.opened_at),
    updatedAt: iso(row.updated_at),
    transitions: transitions
      .filter((t) => t.incident_id === row.id)
      .map((t) => ({
        from: t.from_state,
        to: t.to_state,
        at: iso(t.at),
        actor: t.actor,
        reason: t.reason,
        ...(t.link === null ? {} : { link: t.link }),
      })),
    slo: row.slo,
    causeId: row.cause_id,
    reason: row.reason,
  }));
}

/** Incidents, newest first, optionally of one service and/or in one state. */
export function listIncidents(
  db: Queryable,
  filter: { readonly service?: string; readonly state?: IncidentState } = {},
): Promise<IncidentRecord[]> {
  return incidentsWhere(
    db,
    "WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR state = $2)",
    [filter.service ?? null, filter.state ?? null],
  );
}

/** One incident with its transitions in time order, or null. */
export async function getIncident(db: Queryable, id: string): Promise<IncidentRecord | null> {
  const [found] = await incidentsWhere(db, "WHERE id = $1", [id]);
  return found ?? null;
}

interface ProposalRow {
  id: string;
  service: string;
  incident_id: string | null;
  kind: ProposalKind;
  state: ProposalState;
  created_at: Date;
  summary: string;
  plan: Record<string, unknown>;
  outcome: "completed" | "failed" | null;
  action_at: Date | null;
  branch: string | null;
  commit: string | null;
  pr_url: string | null;
  diff: string | null;
  dry_run: boolean | null;
  failure: string | null;
  needs_triage: boolean | null;
}

/** A proposal as CONTRACT.md shows it, plus its summary, plan and a failed action's reason. */
export type ProposalRecord = ProposalView & {
  readonly summary: string;
  readonly plan: Record<string, unknown>;
  readonly dryRun: boolean | null;
  readonly failure: {
    readonly reason: string;
    readonly needsTriage: boolean;
    readonly at: string;
  } | null;
};

async function proposalsWhere(
  db: Queryable,
  where: string,
  params: readonly unknown[],
): Promise<ProposalRecord[]> {
  const rows = await query<ProposalRow>(
    db,
    `SELECT p.id, p.service, p.incident_id, p.kind, p.state, p.created_at, p.summary, p.plan,
       a.outcome, a.at AS action_at, a.branch, a.commit, a.pr_url, a.diff, a.dry_run,
       a.reason AS failure, a.needs_triage
     FROM proposals p LEFT JOIN actions a ON a.proposal_id = p.id
     WHERE p.kind IS NOT NULL ${where} ORDER BY p.created_at DESC, p.id`,
    params,
  );
  if (rows.length === 0) return [];
  const approvals = await query<{ proposal_id: string; by: string; at: Date; reason: string }>(
    db,
    `SELECT proposal_id, by, at, reason FROM approvals WHERE proposal_id = ANY($1::text[])
     ORDER BY at, by`,
    [rows.map((row) => row.id)],
  );
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    incidentId: row.incident_id,
    kind: row.kind,
    state: row.state,
    createdAt: iso(row.created_at),
    approvals: approvals
      .filter((a) => a.proposal_id === row.id)
      .map((a) => ({ by: a.by, at: iso(a.at), reason: a.reason })),
    action:
      row.outcome === "completed"
        ? {
            branch: row.branch ?? "",
            commit: row.commit ?? "",
            prUrl: row.pr_url,
            diff: row.diff ?? "",
          }
        : null,
    summary: row.summary,
    plan: row.plan,
    dryRun: row.dry_run,
    failure:
      row.outcome === "failed" && row.action_at !== null
        ? {
            reason: row.failure ?? "",
            needsTriage: row.needs_triage === true,
            at: iso(row.action_at),
          }
        : null,
  }));
}

/** Proposals, newest first, optionally in one state and/or of one service. */
export function listProposals(
  db: Queryable,
  filter: { readonly state?: ProposalState; readonly service?: string } = {},
): Promise<ProposalRecord[]> {
  return proposalsWhere(
    db,
    "AND ($1::text IS NULL OR p.state = $1) AND ($2::text IS NULL OR p.service = $2)",
    [filter.state ?? null, filter.service ?? null],
  );
}

/** One proposal with its approvals and action result, or null. */
export async function getProposal(db: Queryable, id: string): Promise<ProposalRecord | null> {
  const [found] = await proposalsWhere(db, "AND p.id = $1", [id]);
  return found ?? null;
}

interface FreezeRow {
  id: string;
  service: string;
  from_at: Date;
  until_at: Date;
  reason: string;
  actor: string;
  origin: "manual" | "exhaustion";
  lifted_at: Date | null;
}

/** A freeze window as CONTRACT.md shows it, and when it was lifted (null while it stands). */
export type FreezeRecord = FreezeView & { readonly liftedAt: string | null };

/**
 * Freeze windows, newest first; with `activeAt`, only those covering that instant and not lifted.
 */
export async function listFreezes(
  db: Queryable,
  filter: { readonly service?: string; readonly activeAt?: string } = {},
): Promise<FreezeRecord[]> {
  const rows = await query<FreezeRow>(
    db,
    `SELECT id, service, from_at, until_at, reason, actor, origin, lifted_at FROM freezes
     WHERE from_at IS NOT NULL AND ($1::text IS NULL OR service = $1)
       AND ($2::timestamptz IS NULL OR (lifted_at IS NULL AND from_at <= $2 AND until_at > $2))
     ORDER BY from_at DESC, id`,
    [filter.service ?? null, filter.activeAt ?? null],
  );
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    from: iso(row.from_at),
    until: iso(row.until_at),
    reason: row.reason,
    actor: row.actor,
    origin: row.origin,
    liftedAt: isoOrNull(row.lifted_at),
  }));
}

/** One SLO's latest evaluation. */
export interface SloState {
  readonly slo: string;
  readonly severity: Severity;
  readonly budgetRemaining: number | null;
  readonly errorRatio: number | null;
  readonly objective: number;
  readonly explanation: string;
  readonly evaluatedAt: string;
  readonly messageId: string;
}

/** A service with its latest evaluation per SLO, worst severity, active incident and verdict. */
export interface ServiceState {
  readonly name: string;
  /** The worst severity over its SLOs; null before the first evaluation. */
  readonly severity: Severity | null;
  /** The smallest budget left over its SLOs. */
  readonly budgetRemaining: number | null;
  readonly slos: readonly SloState[];
  readonly activeIncident: string | null;
  readonly gate: {
    readonly allowed: boolean;
    readonly reasons: readonly GateReason[];
    readonly evaluatedAt: string;
  } | null;
}

function worst(slos: readonly SloState[]): Severity | null {
  let found: Severity | null = null;
  for (const { severity } of slos) {
    if (found === null || SEVERITY_RANK[severity] > SEVERITY_RANK[found]) found = severity;
  }
  return found;
}

/** Every service the log has seen, by name. */
export async function listServices(db: Queryable): Promise<ServiceState[]> {
  const services = await query<{
    name: string;
    verdict_allowed: boolean | null;
    verdict_reasons: GateReason[] | null;
    verdict_at: Date | null;
    incident: string | null;
  }>(
    db,
    `SELECT s.name, s.verdict_allowed, s.verdict_reasons, s.verdict_at, i.id AS incident
     FROM services s LEFT JOIN incidents i
       ON i.service = s.name AND i.state = ANY($1::text[])
     ORDER BY s.name`,
    [ACTIVE_INCIDENT_STATES],
  );
  const evaluations = await query<{
    service: string;
    slo: string;
    severity: Severity;
    budget_remaining: number | null;
    error_ratio: number | null;
    objective: number;
    explanation: string;
    evaluated_at: Date;
    message_id: string;
  }>(
    db,
    `SELECT service, slo, severity, budget_remaining, error_ratio, objective, explanation,
       evaluated_at, message_id FROM evaluations ORDER BY service, slo`,
  );
  return services.map((s) => {
    const slos = evaluations
      .filter((e) => e.service === s.name)
      .map((e) => ({
        slo: e.slo,
        severity: e.severity,
        budgetRemaining: e.budget_remaining,
        errorRatio: e.error_ratio,
        objective: e.objective,
        explanation: e.explanation,
        evaluatedAt: iso(e.evaluated_at),
        messageId: e.message_id,
      }));
    const budgets = slos.flatMap((slo) =>
      slo.budgetRemaining === null ? [] : [slo.budgetRemaining],
    );
    return {
      name: s.name,
      severity: worst(slos),
      budgetRemaining: budgets.length === 0 ? null : Math.min(...budgets),
      slos,
      activeIncident: s.incident,
      gate:
        s.verdict_allowed === null || s.verdict_at === null
          ? null
          : {
              allowed: s.verdict_allowed,
              reasons: s.verdict_reasons ?? [],
              evaluatedAt: iso(s.verdict_at),
            },
    };
  });
}

/** The whole system at a glance (`safedeploy snapshot`, GET /v1/snapshot). */
export interface Snapshot {
  readonly at: string;
  readonly services: readonly ServiceState[];
  /** Active incidents. */
  readonly incidents: readonly IncidentRecord[];
  /** Proposals waiting for a human or the actuator (pending, approved, needs-triage). */
  readonly proposals: readonly ProposalRecord[];
  /** Freezes in force at `at`. */
  readonly freezes: readonly FreezeRecord[];
  /** Services whose latest verdict blocks promotion. */
  readonly blocked: readonly string[];
}

/** A snapshot of the read model at `now` (default: the database's clock). */
export async function snapshot(
  db: Queryable,
  options: { readonly now?: string } = {},
): Promise<Snapshot> {
  const at =
    options.now ??
    iso((await query<{ now: Date }>(db, "SELECT now() AS now"))[0]?.now ?? new Date(0));
  const [services, incidents, proposals, freezes] = await Promise.all([
    listServices(db),
    incidentsWhere(db, "WHERE state = ANY($1::text[])", [ACTIVE_INCIDENT_STATES]),
    proposalsWhere(db, "AND p.state = ANY($1::text[])", [["pending", "approved", "needs-triage"]]),
    listFreezes(db, { activeAt: at }),
  ]);
  return {
    at,
    services,
    incidents,
    proposals,
    freezes,
    blocked: services.filter((s) => s.gate?.allowed === false).map((s) => s.name),
  };
}
