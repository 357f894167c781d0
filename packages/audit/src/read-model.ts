import { SEVERITY_RANK } from "@safedeploy/core";
import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { ACTIVE_INCIDENT_STATES, STREAMS } from "@safedeploy/schema";
import type {
  BudgetStatus,
  Burn,
  FreezeView,
  GateReason,
  GateVerdictKind,
  GuardView,
  IncidentClass,
  IncidentState,
  IncidentView,
  ProposalKind,
  ProposalState,
  ProposalView,
  RevertTarget,
  RollbackHarm,
  Severity,
} from "@safedeploy/schema";

const iso = (value: Date): string => value.toISOString();
const isoOrNull = (value: Date | null): string | null => (value === null ? null : iso(value));

/** The states in which an incident is active (one per service at most), as the schema says. */
export { ACTIVE_INCIDENT_STATES };

/**
 * One keyset page of a list: at most `limit` rows, starting after the row whose sort key is
 * `after` (the key of the previous page's last row). Keys are compared as JavaScript compares
 * strings (byte order, the "C" collation): services by `[name]` ascending; incidents and
 * proposals newest first by `[time, id]`, the time an ISO 8601 instant at millisecond precision.
 */
export interface KeysetPage {
  readonly limit: number;
  readonly after?: readonly string[] | undefined;
}

/** `[time, id]` of a time-ordered page's cursor, or a RangeError naming what is wrong. */
function timeKey(after: readonly string[]): [string, string] {
  const [time, id] = after;
  if (
    after.length !== 2 ||
    time === undefined ||
    id === undefined ||
    Number.isNaN(Date.parse(time))
  ) {
    throw new RangeError("a page key of this list is [time, id], the time an ISO 8601 instant");
  }
  return [time, id];
}

/** Groups rows by a key, keeping their order. */
function groupBy<T>(rows: readonly T[], keyOf: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [row]);
    else group.push(row);
  }
  return groups;
}

/**
 * The SQL of a newest-first keyset page over `time` (millisecond precision, as cursors carry it)
 * then `id`, with its parameters numbered from `first`; an index on the same expressions serves it.
 */
function newestFirst(
  time: string,
  id: string,
  page: KeysetPage | undefined,
  first: number,
): { where: string; order: string; limit: string; params: unknown[] } {
  const ms = `date_trunc('milliseconds', ${time} AT TIME ZONE 'UTC')`;
  const order = `ORDER BY ${ms} DESC, ${id} COLLATE "C"`;
  if (page === undefined) return { where: "", order, limit: "", params: [] };
  const params: unknown[] = [page.limit];
  let where = "";
  if (page.after !== undefined) {
    const [at, last] = timeKey(page.after);
    const t = `($${first + 1}::timestamptz AT TIME ZONE 'UTC')`;
    where = `AND ${ms} <= ${t} AND (${ms} < ${t} OR ${id} COLLATE "C" > $${first + 2})`;
    params.push(at, last);
  }
  return { where, order, limit: `LIMIT $${first}`, params };
}

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
  page?: KeysetPage,
): Promise<IncidentRecord[]> {
  const keyset = newestFirst("opened_at", "id", page, params.length + 1);
  const rows = await query<IncidentRow>(
    db,
    `SELECT id, service, slo, state, severity, class, opened_at, updated_at, cause_id, reason
     FROM incidents ${where} ${keyset.where} ${keyset.order} ${keyset.limit}`,
    [...params, ...keyset.params],
  );
  if (rows.length === 0) return [];
  const transitions = await query<TransitionRow>(
    db,
    `SELECT incident_id, from_state, to_state, at, actor, reason, link FROM incident_transitions
     WHERE incident_id = ANY($1::text[]) ORDER BY at, to_state`,
    [rows.map((row) => row.id)],
  );
  const byIncident = groupBy(transitions, (t) => t.incident_id);
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    state: row.state,
    severity: row.severity,
    class: row.class,
    openedAt: iso(row.opened_at),
    updatedAt: iso(row.updated_at),
    transitions: (byIncident.get(row.id) ?? []).map((t) => ({
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

/**
 * Incidents, newest first (by opening time at millisecond precision, then id), optionally of one
 * service and/or in one state; with `page`, only that keyset page of them.
 */
export function listIncidents(
  db: Queryable,
  filter: { readonly service?: string; readonly state?: IncidentState } = {},
  page?: KeysetPage,
): Promise<IncidentRecord[]> {
  return incidentsWhere(
    db,
    "WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR state = $2)",
    [filter.service ?? null, filter.state ?? null],
    page,
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
  target: RevertTarget | null;
  harm: RollbackHarm | null;
}

/** A proposal as CONTRACT.md shows it, plus its summary, plan and a failed action's reason. */
export type ProposalRecord = ProposalView & {
  /** For a revert: the commit it reverts (or reverted), and why that one. */
  readonly target?: RevertTarget;
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
  page?: KeysetPage,
): Promise<ProposalRecord[]> {
  const keyset = newestFirst("p.created_at", "p.id", page, params.length + 1);
  const rows = await query<ProposalRow>(
    db,
    `SELECT p.id, p.service, p.incident_id, p.kind, p.state, p.created_at, p.summary, p.plan,
       a.outcome, a.at AS action_at, a.branch, a.commit, a.pr_url, a.diff, a.dry_run,
       a.reason AS failure, a.needs_triage, a.target, a.harm
     FROM proposals p LEFT JOIN actions a ON a.proposal_id = p.id
     WHERE p.kind IS NOT NULL ${where} ${keyset.where} ${keyset.order} ${keyset.limit}`,
    [...params, ...keyset.params],
  );
  if (rows.length === 0) return [];
  const approvals = await query<{ proposal_id: string; by: string; at: Date; reason: string }>(
    db,
    `SELECT proposal_id, by, at, reason FROM approvals WHERE proposal_id = ANY($1::text[])
     ORDER BY at, by`,
    [rows.map((row) => row.id)],
  );
  const byProposal = groupBy(approvals, (a) => a.proposal_id);
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    incidentId: row.incident_id,
    kind: row.kind,
    state: row.state,
    createdAt: iso(row.created_at),
    approvals: (byProposal.get(row.id) ?? []).map((a) => ({
      by: a.by,
      at: iso(a.at),
      reason: a.reason,
    })),
    action:
      row.outcome === "completed" && row.dry_run !== true
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
    preview:
      row.dry_run === true
        ? {
            diff: row.outcome === "completed" ? (row.diff ?? "") : "",
            error: row.outcome === "failed" ? (row.failure ?? "") : null,
            target: row.target,
            harm: row.harm,
          }
        : null,
    ...(row.target === null ? {} : { target: row.target }),
    failure:
      row.outcome === "failed" && row.dry_run !== true && row.action_at !== null
        ? {
            reason: row.failure ?? "",
            needsTriage: row.needs_triage === true,
            at: iso(row.action_at),
          }
        : null,
  }));
}

/**
 * Proposals, newest first (by creation time at millisecond precision, then id), optionally in one
 * state and/or of one service; with `page`, only that keyset page of them.
 */
export function listProposals(
  db: Queryable,
  filter: { readonly state?: ProposalState; readonly service?: string } = {},
  page?: KeysetPage,
): Promise<ProposalRecord[]> {
  return proposalsWhere(
    db,
    "AND ($1::text IS NULL OR p.state = $1) AND ($2::text IS NULL OR p.service = $2)",
    [filter.state ?? null, filter.service ?? null],
    page,
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

interface GuardRow {
  id: string;
  service: string;
  train: string;
  train_id: string;
  step: number | null;
  reason: string;
  evidence: string[] | null;
  at: Date;
  cleared_at: Date | null;
  cleared_by: string | null;
}

/**
 * Failed release-train guards, newest first; with `activeAt`, only those standing then (the
 * service's gate blocks on each until it is cleared).
 */
export async function listGuards(
  db: Queryable,
  filter: { readonly service?: string; readonly activeAt?: string } = {},
): Promise<GuardView[]> {
  const rows = await query<GuardRow>(
    db,
    `SELECT id, service, train, train_id, step, reason, evidence, at, cleared_at, cleared_by
     FROM guards
     WHERE at IS NOT NULL AND ($1::text IS NULL OR service = $1)
       AND ($2::timestamptz IS NULL OR (at <= $2 AND (cleared_at IS NULL OR cleared_at > $2)))
     ORDER BY at DESC, id`,
    [filter.service ?? null, filter.activeAt ?? null],
  );
  return rows.map((row) => ({
    id: row.id,
    service: row.service,
    train: row.train,
    trainId: row.train_id,
    step: row.step,
    reason: row.reason,
    evidence: row.evidence ?? [],
    at: iso(row.at),
    clearedAt: isoOrNull(row.cleared_at),
    clearedBy: row.cleared_by,
  }));
}

/** One SLO's latest evaluation. */
export interface SloState {
  readonly slo: string;
  readonly severity: Severity;
  /** How fast it burns, and what is left of its budget (null before they were recorded apart). */
  readonly burn: Burn | null;
  readonly budget: BudgetStatus | null;
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
    readonly verdict: GateVerdictKind;
    readonly reasons: readonly GateReason[];
    readonly evaluatedAt: string;
    /** Seconds from the oldest SLO's newest evaluation to `evaluatedAt`. */
    readonly evidenceAge: number | null;
  } | null;
}

function worst(slos: readonly SloState[]): Severity | null {
  let found: Severity | null = null;
  for (const { severity } of slos) {
    if (found === null || SEVERITY_RANK[severity] > SEVERITY_RANK[found]) found = severity;
  }
  return found;
}

interface ServiceRow {
  name: string;
  verdict_allowed: boolean | null;
  verdict_reasons: GateReason[] | null;
  verdict_at: Date | null;
  verdict_kind: GateVerdictKind | null;
  verdict_evidence_age: number | null;
  incident: string | null;
}

interface EvaluationRow {
  service: string;
  slo: string;
  severity: Severity;
  budget_remaining: number | null;
  error_ratio: number | null;
  objective: number;
  explanation: string;
  evaluated_at: Date;
  message_id: string;
  burn: Burn | null;
  budget: BudgetStatus | null;
}

const SERVICE_COLUMNS = `s.name, s.verdict_allowed, s.verdict_reasons, s.verdict_at, s.verdict_kind,
  s.verdict_evidence_age, i.id AS incident
  FROM services s LEFT JOIN incidents i ON i.service = s.name AND i.state = ANY($1::text[])`;
const EVALUATION_COLUMNS = `service, slo, severity, budget_remaining, error_ratio, objective,
  explanation, evaluated_at, message_id, burn, budget FROM evaluations`;

function serviceState(s: ServiceRow, evaluations: readonly EvaluationRow[]): ServiceState {
  const slos = evaluations.map((e) => ({
    slo: e.slo,
    severity: e.severity,
    burn: e.burn,
    budget: e.budget,
    budgetRemaining: e.budget_remaining,
    errorRatio: e.error_ratio,
    objective: e.objective,
    explanation: e.explanation,
    evaluatedAt: iso(e.evaluated_at),
    messageId: e.message_id,
  }));
  let budgetRemaining: number | null = null;
  for (const slo of slos) {
    if (slo.budgetRemaining !== null) {
      budgetRemaining =
        budgetRemaining === null
          ? slo.budgetRemaining
          : Math.min(budgetRemaining, slo.budgetRemaining);
    }
  }
  return {
    name: s.name,
    severity: worst(slos),
    budgetRemaining,
    slos,
    activeIncident: s.incident,
    gate:
      s.verdict_allowed === null || s.verdict_at === null
        ? null
        : {
            allowed: s.verdict_allowed,
            verdict: s.verdict_kind ?? (s.verdict_allowed ? "pass" : "block"),
            reasons: s.verdict_reasons ?? [],
            evaluatedAt: iso(s.verdict_at),
            evidenceAge: s.verdict_evidence_age,
          },
  };
}

/**
 * Every service the log has seen, by name (byte order); with `page`, only that keyset page of
 * them (`after` is `[name]`), each read by key rather than by scanning every service.
 */
export async function listServices(db: Queryable, page?: KeysetPage): Promise<ServiceState[]> {
  const after = page?.after?.[0] ?? null;
  const services = await query<ServiceRow>(
    db,
    `SELECT ${SERVICE_COLUMNS}
     WHERE ($2::text IS NULL OR s.name COLLATE "C" > $2)
     ORDER BY s.name COLLATE "C" LIMIT $3`,
    [ACTIVE_INCIDENT_STATES, after, page?.limit ?? null],
  );
  if (services.length === 0) return [];
  const evaluations =
    page === undefined
      ? await query<EvaluationRow>(db, `SELECT ${EVALUATION_COLUMNS} ORDER BY service, slo`)
      : await query<EvaluationRow>(
          db,
          `SELECT ${EVALUATION_COLUMNS} WHERE service = ANY($1::text[]) ORDER BY service, slo`,
          [services.map((s) => s.name)],
        );
  const byService = groupBy(evaluations, (e) => e.service);
  return services.map((s) => serviceState(s, byService.get(s.name) ?? []));
}

/** One service the log has seen, read by its name, or null. */
export async function getService(db: Queryable, name: string): Promise<ServiceState | null> {
  const [[found], evaluations] = await Promise.all([
    query<ServiceRow>(db, `SELECT ${SERVICE_COLUMNS} WHERE s.name = $2`, [
      ACTIVE_INCIDENT_STATES,
      name,
    ]),
    query<EvaluationRow>(db, `SELECT ${EVALUATION_COLUMNS} WHERE service = $1 ORDER BY slo`, [
      name,
    ]),
  ]);
  return found === undefined ? null : serviceState(found, evaluations);
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
  /** Failed release-train guards standing at `at` (each blocks its service's gate). */
  readonly guards: readonly GuardView[];
  /** Services whose latest verdict does not allow promotion (block or unknown). */
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
  const [services, incidents, proposals, freezes, guards] = await Promise.all([
    listServices(db),
    incidentsWhere(db, "WHERE state = ANY($1::text[])", [ACTIVE_INCIDENT_STATES]),
    proposalsWhere(db, "AND p.state = ANY($1::text[])", [["pending", "approved", "needs-triage"]]),
    listFreezes(db, { activeAt: at }),
    listGuards(db, { activeAt: at }),
  ]);
  return {
    at,
    services,
    incidents,
    proposals,
    freezes,
    guards,
    blocked: services.filter((s) => s.gate?.allowed === false).map((s) => s.name),
  };
}

/**
 * A token that changes whenever the read model may have: the newest chain position of each
 * stream (the read model changes only in the transactions that append to the audit log). One
 * index lookup per stream, so it is cheap enough to ask before every snapshot.
 */
export async function readModelVersion(db: Queryable): Promise<string> {
  const [row] = await query<{ version: string | null }>(
    db,
    `SELECT string_agg(s.stream || ':' || coalesce(
              (SELECT max(a.position) FROM audit_log a WHERE a.stream = s.stream), 0),
            ',' ORDER BY s.stream) AS version
     FROM unnest($1::text[]) AS s(stream)`,
    [[...STREAMS]],
  );
  return row?.version ?? "";
}
