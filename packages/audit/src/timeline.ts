import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { MAX_ROWS, incidentsOpened } from "./history.js";

/** One moment of an incident's timeline, with where the audit log holds it. */
export interface TimelineEntry {
  readonly at: string;
  readonly type: string;
  readonly summary: string;
  readonly messageId: string | null;
  readonly stream: string;
  readonly seq: number;
}

/** An incident's timeline: its events, its proposals' and their decisions, and recent deploys. */
export interface IncidentTimeline {
  readonly incidentId: string;
  readonly service: string;
  readonly slo: string | null;
  readonly openedAt: string;
  readonly resolvedAt: string | null;
  readonly entries: readonly TimelineEntry[];
}

interface TimelineRow {
  stream: string;
  seq: string;
  message_id: string | null;
  type: string;
  payload: { data?: Record<string, unknown> };
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

/** A line saying what one event of the timeline did. */
function summaryOf(type: string, d: Record<string, unknown>): string {
  switch (type) {
    case "incidents.opened":
      return `opened (${text(d.class)}, ${text(d.severity)}): ${text(d.reason)}`;
    case "incidents.transitioned":
      return `${text(d.from)} → ${text(d.to)} by ${text(d.actor)}: ${text(d.reason)}`;
    case "incidents.escalated":
      return `escalated ${text(d.previousClass)} → ${text(d.class)} (${text(d.severity)})`;
    case "governance.proposal-created":
      return `proposal ${text(d.proposalId)}: ${text(d.summary)}`;
    case "governance.proposal-approved":
      return `${text(d.proposalId)} approved by ${text(d.by)}: ${text(d.reason)}`;
    case "governance.proposal-rejected":
      return `${text(d.proposalId)} rejected by ${text(d.by)}: ${text(d.reason)}`;
    case "governance.action-completed":
      return `${text(d.proposalId)} ${d.dryRun === true ? "previewed" : "executed"}: ${text(d.branch)} ${text(d.commit).slice(0, 12)}`;
    case "governance.action-failed":
      return `${text(d.proposalId)} failed: ${text(d.reason)}`;
    case "governance.deploy-recorded":
      return `${text(d.trigger)} ${text(d.revision)} (${text(d.reporter)})`;
    default:
      return type;
  }
}

const TIMELINE_TYPES = [
  "incidents.opened",
  "incidents.transitioned",
  "incidents.escalated",
  "governance.proposal-created",
  "governance.proposal-approved",
  "governance.proposal-rejected",
  "governance.action-completed",
  "governance.action-failed",
];
/**
 * An incident's timeline from the audit log, by event time: its own events, its proposals, their
 * approvals and actions, and the service's deploys from `deploysBeforeMs` before it opened until
 * it was resolved. Null when the log holds no `incidents.opened` for it.
 */
export async function readIncidentTimeline(
  db: Queryable,
  incidentId: string,
  deploysBeforeMs: number,
  now: string,
): Promise<IncidentTimeline | null> {
  const rows = await query<TimelineRow>(
    db,
    `WITH own AS (
       SELECT stream, seq, message_id, type, payload FROM audit_log
        WHERE payload -> 'data' ->> 'incidentId' = $1 AND type = ANY($2::text[])
          AND stream <> 'DEADLETTER'
     ), proposals AS (
       SELECT DISTINCT payload -> 'data' ->> 'proposalId' AS id FROM own
        WHERE type = 'governance.proposal-created'
     )
     SELECT * FROM own
     UNION
     SELECT stream, seq, message_id, type, payload FROM audit_log
      WHERE payload -> 'data' ->> 'proposalId' IN (SELECT id FROM proposals)
        AND type = ANY($2::text[]) AND stream <> 'DEADLETTER'
     LIMIT ${MAX_ROWS}`,
    [incidentId, TIMELINE_TYPES],
  );
  const opened = rows.find((r) => r.type === "incidents.opened");
  if (opened === undefined) return null;
  const [incident] = (
    await incidentsOpened(
      db,
      { since: text(opened.payload.data?.openedAt), until: "9999-12-31T23:59:59.999Z" },
      null,
    )
  ).filter((i) => i.id === incidentId);
  if (incident === undefined) return null;
  const deploys = await query<TimelineRow>(
    db,
    `SELECT stream, seq, message_id, type, payload FROM audit_log
      WHERE type = 'governance.deploy-recorded' AND stream = 'GOVERNANCE' AND service = $1
        AND safedeploy_instant(payload -> 'data' ->> 'at') >= $2::timestamptz
        AND safedeploy_instant(payload -> 'data' ->> 'at') <= $3::timestamptz
      LIMIT ${MAX_ROWS}`,
    [
      incident.service,
      new Date(Date.parse(incident.openedAt) - deploysBeforeMs).toISOString(),
      incident.resolvedAt ?? now,
    ],
  );
  const entries = [...rows, ...deploys]
    .map((row) => {
      const d = row.payload.data ?? {};
      const at = [d.at, d.openedAt, d.createdAt].find((t) => typeof t === "string");
      return {
        at: typeof at === "string" ? at : "",
        type: row.type,
        summary: summaryOf(row.type, d),
        messageId: row.message_id,
        stream: row.stream,
        seq: Number(row.seq),
      };
    })
    .filter((e) => !Number.isNaN(Date.parse(e.at)))
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.seq - b.seq);
  const { id, ...rest } = incident;
  return { incidentId: id, ...rest, entries };
}
