import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";

/** Where one evidence item came from: its place in the audit log and the hash that seals it. */
export interface EvidenceSource {
  readonly stream: string;
  readonly seq: number;
  readonly position: number;
  readonly messageId: string | null;
  readonly type: string | null;
  readonly hash: string;
}

/** One part of an evidence bundle: the stored envelopes and, in the same order, their sources. */
export interface EvidencePart {
  readonly items: readonly unknown[];
  readonly sources: readonly EvidenceSource[];
}

/** The six files of `safedeploy evidence export` (DESIGN.md, "Evidence"). */
export interface EvidenceBundle {
  readonly incidentId: string;
  readonly service: string;
  /** incidents.opened and incidents.escalated of the incident. */
  readonly decision: EvidencePart;
  /** The metrics.snapshot(s) the budget evaluations were computed from. */
  readonly slo: EvidencePart;
  /** The evaluation that caused the incident and the service's evaluations while it was active. */
  readonly budget: EvidencePart;
  /** governance.proposal-created for the incident. */
  readonly proposal: EvidencePart;
  /** governance.proposal-approved / -rejected of those proposals. */
  readonly approval: EvidencePart;
  /** incidents.transitioned of the incident and the proposals' action results. */
  readonly resolution: EvidencePart;
}

/** The parts of a bundle, in file order. */
export const EVIDENCE_PARTS = [
  "decision",
  "slo",
  "budget",
  "proposal",
  "approval",
  "resolution",
] as const;

interface SourceRow {
  stream: string;
  seq: string;
  position: string;
  message_id: string | null;
  type: string | null;
  hash: string;
  payload: unknown;
}

const COLUMNS = "stream, seq, position, message_id, type, hash, payload";
/** At most this many evaluations of the active period go into budget.json. */
const MAX_EVALUATIONS = 2_000;

function part(rows: readonly SourceRow[]): EvidencePart {
  return {
    items: rows.map((row) => row.payload),
    sources: rows.map((row) => ({
      stream: row.stream,
      seq: Number(row.seq),
      position: Number(row.position),
      messageId: row.message_id,
      type: row.type,
      hash: row.hash,
    })),
  };
}

function data(row: SourceRow): Record<string, unknown> {
  const payload = row.payload as { data?: Record<string, unknown> } | null;
  return payload?.data ?? {};
}

function strings(values: readonly unknown[]): string[] {
  return [...new Set(values.filter((v): v is string => typeof v === "string"))];
}

/**
 * Builds an incident's evidence bundle from the audit log (never from the read model), so every
 * item carries the stream, sequence, message id and chain hash it was stored under. Null when the
 * log holds no `incidents.opened` for the incident.
 */
export async function evidenceBundle(
  db: Queryable,
  incidentId: string,
): Promise<EvidenceBundle | null> {
  const decision = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE payload -> 'data' ->> 'incidentId' = $1
       AND type IN ('incidents.opened', 'incidents.escalated')
     ORDER BY stored_at, stream, seq`,
    [incidentId],
  );
  const opened = decision.find((row) => row.type === "incidents.opened");
  if (opened === undefined) return null;
  const service = (opened.payload as { service: string }).service;
  const openedAt = String(data(opened).openedAt);

  const resolutionTransitions = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE payload -> 'data' ->> 'incidentId' = $1 AND type = 'incidents.transitioned'
     ORDER BY (payload -> 'data' ->> 'at')::timestamptz, stream, seq`,
    [incidentId],
  );
  const resolvedAt = resolutionTransitions
    .map(data)
    .find((d) => d.to === "resolved" || d.to === "postmortem-complete")?.at;

  const causes = strings(decision.map((row) => data(row).causeId));
  const budget = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE type = 'budget.evaluated' AND (
       message_id = ANY($1::text[])
       OR (service = $2
           AND (payload -> 'data' ->> 'evaluatedAt')::timestamptz >= $3::timestamptz
           AND ($4::timestamptz IS NULL
                OR (payload -> 'data' ->> 'evaluatedAt')::timestamptz <= $4::timestamptz)))
     ORDER BY (payload -> 'data' ->> 'evaluatedAt')::timestamptz, stream, seq
     LIMIT ${MAX_EVALUATIONS}`,
    [causes, service, openedAt, resolvedAt ?? null],
  );
  const snapshots = strings(budget.map((row) => data(row).snapshotId));
  const slo = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE type = 'metrics.snapshot' AND message_id = ANY($1::text[])
     ORDER BY (payload -> 'data' ->> 'evaluatedAt')::timestamptz, stream, seq`,
    [snapshots],
  );
  const proposal = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE type = 'governance.proposal-created' AND payload -> 'data' ->> 'incidentId' = $1
     ORDER BY stored_at, stream, seq`,
    [incidentId],
  );
  const proposalIds = strings(proposal.map((row) => data(row).proposalId));
  const approval = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE type IN ('governance.proposal-approved', 'governance.proposal-rejected')
       AND payload -> 'data' ->> 'proposalId' = ANY($1::text[])
     ORDER BY (payload -> 'data' ->> 'at')::timestamptz, stream, seq`,
    [proposalIds],
  );
  const actions = await query<SourceRow>(
    db,
    `SELECT ${COLUMNS} FROM audit_log
     WHERE type IN ('governance.action-completed', 'governance.action-failed')
       AND (payload -> 'data' ->> 'proposalId' = ANY($1::text[])
            OR payload -> 'data' ->> 'incidentId' = $2)
     ORDER BY (payload -> 'data' ->> 'at')::timestamptz, stream, seq`,
    [proposalIds, incidentId],
  );
  return {
    incidentId,
    service,
    decision: part(decision),
    slo: part(slo),
    budget: part(budget),
    proposal: part(proposal),
    approval: part(approval),
    resolution: part([...resolutionTransitions, ...actions]),
  };
}
