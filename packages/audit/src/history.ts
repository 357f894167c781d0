import { DEPLOY_TRIGGERS, deploysOf } from "@safedeploy/core";
import type {
  ChartMarker,
  DoraDeployEvent,
  DoraIncident,
  DoraRollback,
  EvaluationPoint,
} from "@safedeploy/core";
import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { envelopeSchema } from "@safedeploy/schema";
import type { EventType } from "@safedeploy/schema";

/** A time range [since, until), ISO 8601 instants. */
export interface TimeRange {
  readonly since: string;
  readonly until: string;
}

/** What the DORA keys are computed from (see `doraReport` of `@safedeploy/core`). */
export interface DoraHistory {
  readonly deployEvents: readonly DoraDeployEvent[];
  readonly incidents: readonly DoraIncident[];
  readonly rollbacks: readonly DoraRollback[];
}

/** At most this many rows of one kind per query: a bounded answer, whatever the range. */
export const MAX_ROWS = 20_000;
const RESOLVED = ["resolved", "postmortem-complete"];

interface EnvelopeRow {
  payload: unknown;
}

/**
 * Stored envelopes of `types` whose `data[timeField]` is in the range, validated by their schema:
 * an envelope that does not parse is no evidence and is left out (it is in the dead letters).
 */
async function envelopes<T extends EventType>(
  db: Queryable,
  types: readonly T[],
  timeField: string,
  range: TimeRange,
  service: string | null = null,
) {
  // Interpolated, not a parameter, so the expression is the one the history indexes hold.
  if (!/^[A-Za-z]+$/.test(timeField)) throw new RangeError(`not a time field: ${timeField}`);
  const at = `safedeploy_instant(payload -> 'data' ->> '${timeField}')`;
  const rows = await query<EnvelopeRow>(
    db,
    `SELECT payload FROM audit_log
      WHERE type = ANY($1::text[]) AND stream <> 'DEADLETTER'
        AND ${at} >= $2::timestamptz AND ${at} < $3::timestamptz
        AND ($4::text IS NULL OR service = $4)
      ORDER BY ${at}, stream, seq
      LIMIT ${MAX_ROWS}`,
    [types, range.since, range.until, service],
  );
  // A message stored twice (published again after JetStream's duplicate window) counts once.
  const seen = new Set<string>();
  return rows.flatMap((row) => {
    const type = (row.payload as { type?: unknown } | null)?.type;
    const schema = types.find((t) => t === type);
    if (schema === undefined) return [];
    const parsed = envelopeSchema(schema).safeParse(row.payload);
    if (!parsed.success || seen.has(parsed.data.id)) return [];
    seen.add(parsed.data.id);
    return [parsed.data];
  });
}

/** When each incident was first resolved (or closed after a postmortem). */
async function resolutions(db: Queryable, ids: readonly string[]): Promise<Map<string, string>> {
  const rows = await query<{ id: string; at: Date | null }>(
    db,
    `SELECT payload -> 'data' ->> 'incidentId' AS id,
            min(safedeploy_instant(payload -> 'data' ->> 'at')) AS at
       FROM audit_log
      WHERE type = 'incidents.transitioned' AND stream = 'INCIDENTS'
        AND payload -> 'data' ->> 'incidentId' = ANY($1::text[])
        AND payload -> 'data' ->> 'to' = ANY($2::text[])
      GROUP BY 1`,
    [ids, RESOLVED],
  );
  return new Map(rows.flatMap((r) => (r.at === null ? [] : [[r.id, r.at.toISOString()] as const])));
}

/** Incidents opened in the range, with when each was first resolved. */
export async function incidentsOpened(db: Queryable, range: TimeRange, service: string | null) {
  const opened = await envelopes(db, ["incidents.opened"], "openedAt", range, service);
  const resolved = await resolutions(
    db,
    opened.map((e) => e.data.incidentId),
  );
  return opened.map((e): DoraIncident & { slo: string | null } => ({
    id: e.data.incidentId,
    service: e.service,
    slo: e.data.slo,
    openedAt: e.data.openedAt,
    resolvedAt: resolved.get(e.data.incidentId) ?? null,
  }));
}

/**
 * The deploys, incidents and rollbacks of the DORA keys over a range: deploys and failure signals
 * from `lookbackMs` before it to `lookaheadMs` after it (they decide which deploy a failure
 * belongs to), incidents opened in it. A rollback is an executed (not dry-run) `rollback-rollout`
 * action, or an aborted rollout.
 */
export async function readDoraHistory(
  db: Queryable,
  range: TimeRange,
  around: { readonly lookbackMs: number; readonly lookaheadMs: number },
): Promise<DoraHistory> {
  const wide = {
    since: new Date(Date.parse(range.since) - around.lookbackMs).toISOString(),
    until: new Date(Date.parse(range.until) + around.lookaheadMs).toISOString(),
  };
  const [deploys, actions] = await Promise.all([
    envelopes(db, ["governance.deploy-recorded"], "at", wide),
    envelopes(db, ["governance.action-completed"], "at", wide),
  ]);
  const incidents = await incidentsOpened(db, wide, null);
  return {
    deployEvents: deploys.map((e) => ({
      service: e.service,
      revision: e.data.revision,
      trigger: e.data.trigger,
      at: e.data.at,
      commitTime: e.data.commitTime,
    })),
    incidents: incidents.map(({ id, service, openedAt, resolvedAt }) => ({
      id,
      service,
      openedAt,
      resolvedAt,
    })),
    rollbacks: [
      ...actions
        .filter((e) => e.data.kind === "rollback-rollout" && !e.data.dryRun)
        .map((e) => ({ service: e.service, at: e.data.at, kind: "rollback-executed" as const })),
      ...deploys
        .filter((e) => e.data.trigger === "on-rollout-aborted")
        .map((e) => ({ service: e.service, at: e.data.at, kind: "rollout-aborted" as const })),
    ],
  };
}

interface BucketRow {
  at: Date;
  evaluations: string;
  budget_remaining: number | null;
  burn_rates: { window: string; burnRate: number | null }[];
}

/**
 * The budget evaluations of one SLO in a range, folded in SQL into buckets of `bucketMs` (aligned
 * to the epoch): each at its last evaluation, with that one's budget left and each window's
 * highest burn rate. Values that are not numbers are null, never a failed query.
 */
export async function readEvaluationHistory(
  db: Queryable,
  slo: { readonly service: string; readonly slo: string },
  range: TimeRange,
  bucketMs: number,
): Promise<{ points: EvaluationPoint[]; evaluations: number }> {
  const rows = await query<BucketRow>(
    db,
    `WITH e AS (
       -- A message stored twice (published again after JetStream's duplicate window) counts once.
       -- The SLO's part of each message: data.slos[] now, the whole of data in older messages.
       SELECT DISTINCT ON (message_id)
              safedeploy_instant(payload -> 'data' ->> 'evaluatedAt') AS at, s.d
         FROM audit_log,
              LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(payload -> 'data' -> 'slos') = 'array'
                     THEN payload -> 'data' -> 'slos'
                     ELSE jsonb_build_array(payload -> 'data') END) AS s(d)
        WHERE type = 'budget.evaluated' AND stream = 'BUDGET' AND service = $1
          AND s.d ->> 'slo' = $2
          AND safedeploy_instant(payload -> 'data' ->> 'evaluatedAt') >= $3::timestamptz
          AND safedeploy_instant(payload -> 'data' ->> 'evaluatedAt') < $4::timestamptz
        ORDER BY message_id, stream, seq
     ), b AS (
       SELECT floor(extract(epoch FROM at) * 1000 / $5)::bigint AS bucket, at, d FROM e
     ), w AS (
       SELECT b.bucket, r ->> 'window' AS win,
              max(CASE WHEN jsonb_typeof(r -> 'burnRate') = 'number'
                       THEN (r ->> 'burnRate')::float8 END) AS rate
         FROM b, jsonb_array_elements(CASE WHEN jsonb_typeof(b.d -> 'burnRates') = 'array'
                                           THEN b.d -> 'burnRates' ELSE '[]'::jsonb END) AS r
        WHERE jsonb_typeof(r -> 'window') = 'string'
        GROUP BY 1, 2
     ), wa AS (
       SELECT bucket, jsonb_agg(jsonb_build_object('window', win, 'burnRate', rate)) AS burn_rates
         FROM w GROUP BY bucket
     ), ba AS (
       SELECT bucket, max(at) AS at, count(*) AS evaluations,
              (array_agg(CASE WHEN jsonb_typeof(d -> 'budgetRemaining') = 'number'
                              THEN (d ->> 'budgetRemaining')::float8 END ORDER BY at DESC))[1]
                AS budget_remaining
         FROM b GROUP BY bucket
     )
     SELECT ba.at, ba.evaluations, ba.budget_remaining, coalesce(wa.burn_rates, '[]') AS burn_rates
       FROM ba LEFT JOIN wa USING (bucket) ORDER BY ba.bucket
      LIMIT ${MAX_ROWS}`,
    [slo.service, slo.slo, range.since, range.until, bucketMs],
  );
  return {
    points: rows.map((row) => ({
      at: row.at.toISOString(),
      budgetRemaining: row.budget_remaining,
      burnRates: row.burn_rates,
    })),
    evaluations: rows.reduce((sum, row) => sum + Number(row.evaluations), 0),
  };
}

/** Freeze markers: opened at its start, ended when lifted or at its end, whichever is first. */
async function freezeMarkers(db: Queryable, service: string, range: TimeRange) {
  const all = { since: "1970-01-01T00:00:00.000Z", until: range.until };
  const opened = await envelopes(db, ["governance.freeze-opened"], "from", all, service);
  const lifted = await envelopes(db, ["governance.freeze-lifted"], "at", all, service);
  const liftedAt = new Map(lifted.map((e) => [e.data.freezeId, e.data.at]));
  return opened.flatMap((e): ChartMarker[] => {
    const lift = liftedAt.get(e.data.freezeId);
    const end =
      lift !== undefined && Date.parse(lift) < Date.parse(e.data.until) ? lift : e.data.until;
    const ref = e.data.freezeId;
    return [
      { kind: "freeze-opened", at: e.data.from, ref, label: `freeze: ${e.data.reason}` },
      {
        kind: "freeze-lifted",
        at: end,
        ref,
        label: lift === end ? "freeze lifted" : "freeze ended",
      },
    ];
  });
}

/**
 * The moments the charts of a service mark in a range, by time: incidents opened and resolved,
 * deploys (as DORA counts them) and freezes opened and ended.
 */
export async function readChartMarkers(
  db: Queryable,
  service: string,
  range: TimeRange,
): Promise<ChartMarker[]> {
  const [incidents, deployEvents, freezes] = await Promise.all([
    incidentsOpened(db, range, service),
    envelopes(db, ["governance.deploy-recorded"], "at", range, service),
    freezeMarkers(db, service, range),
  ]);
  const deploys = deploysOf(
    deployEvents
      .filter((e) => DEPLOY_TRIGGERS.includes(e.data.trigger))
      .map((e) => ({ ...e.data, service: e.service })),
  );
  const inRange = (at: string) =>
    Date.parse(at) >= Date.parse(range.since) && Date.parse(at) < Date.parse(range.until);
  return [
    ...incidents.flatMap((i): ChartMarker[] => [
      { kind: "incident-opened", at: i.openedAt, ref: i.id, label: `${i.id} opened` },
      ...(i.resolvedAt === null
        ? []
        : [
            {
              kind: "incident-resolved" as const,
              at: i.resolvedAt,
              ref: i.id,
              label: `${i.id} resolved`,
            },
          ]),
    ]),
    ...deploys.map((d): ChartMarker => ({
      kind: "deploy",
      at: d.at,
      ref: d.revision,
      label: `deploy ${d.revision}`,
    })),
    ...freezes,
  ]
    .filter((m) => inRange(m.at))
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.kind.localeCompare(b.kind));
}
