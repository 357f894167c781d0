import { query } from "@safedeploy/db";
import type { Queryable } from "@safedeploy/db";
import { ACTIVE_INCIDENT_STATES, AnyEnvelope } from "@safedeploy/schema";
import type { Envelope, EvaluatedSlo } from "@safedeploy/schema";

/** The envelope a stored payload holds, or undefined (a dead letter, an unknown type, junk). */
export function envelopeOf(payload: unknown): Envelope | undefined {
  const parsed = AnyEnvelope.safeParse(payload);
  return parsed.success ? parsed.data : undefined;
}

const ACTIVE_INCIDENT_INDEX = "incidents_one_active_per_service";

const NONE_PENDING: ReadonlySet<string> = new Set();

const skipTouch = (): Promise<void> => Promise.resolve();

async function touchOne(db: Queryable, name: string, at: string): Promise<void> {
  await query(
    db,
    `INSERT INTO services (name, updated_at) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET updated_at = GREATEST(services.updated_at, EXCLUDED.updated_at)`,
    [name, at],
  );
}

/**
 * Recomputes an incident's state and update time from its recorded transitions, so the outcome
 * is the same whatever order the events arrived in.
 */

/**
 * Projects the openings the one-active-incident index refused for `service`: audit replicas may
 * store "B opened" before "A resolved" (batches commit in any order), and B belongs in the read
 * model once A is closed. Already-projected openings are skipped by their id.
 */
async function reopenRefused(
  db: Queryable,
  service: string,
  pending: ReadonlySet<string>,
): Promise<void> {
  // Openings later in the same batch are stored already but projected at their own turn: taking
  // them here too made a batch of many openings and resolutions quadratic.
  const refused = await query<{ payload: unknown }>(
    db,
    `SELECT payload FROM audit_log a
     WHERE a.service = $1 AND a.type = 'incidents.opened'
       AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = a.payload -> 'data' ->> 'incidentId')
       AND NOT (a.payload -> 'data' ->> 'incidentId') = ANY($2::text[])
     ORDER BY a.stored_at, a.seq`,
    [service, [...pending]],
  );
  for (const row of refused) {
    const envelope = envelopeOf(row.payload);
    if (envelope !== undefined) await projectEnvelope(db, envelope);
  }
}

async function refreshIncident(db: Queryable, incidentId: string): Promise<void> {
  await query(
    db,
    `UPDATE incidents i SET
       state = COALESCE(t.to_state, i.state),
       updated_at = GREATEST(i.updated_at, COALESCE(t.at, i.updated_at))
     FROM (SELECT to_state, at FROM incident_transitions WHERE incident_id = $1
           ORDER BY at DESC, to_state DESC LIMIT 1) t
     WHERE i.id = $1 AND (i.state IS DISTINCT FROM t.to_state OR i.updated_at < t.at)`,
    [incidentId],
  );
}

/** Outcome of projecting one envelope; `refused` names a read-model invariant that held. */
export type Projection = "projected" | "ignored" | { readonly refused: string };

/**
 * Applies one envelope to the read model. Idempotent (ON CONFLICT) and order-tolerant; types the
 * read model does not show are ignored. Runs inside the caller's transaction: a refusal by the
 * one-active-incident index is contained in a savepoint and reported, not thrown.
 */
export async function projectEnvelope(
  db: Queryable,
  e: Envelope,
  options: { readonly touched?: boolean; readonly pending?: ReadonlySet<string> } = {},
): Promise<Projection> {
  // The caller may have touched every service of its batch in one statement already.
  const touchService = options.touched === true ? skipTouch : touchOne;
  switch (e.type) {
    case "budget.evaluated": {
      await touchService(db, e.service, e.time);
      await upsertEvaluations(db, [e]);
      return "projected";
    }
    case "governance.verdict": {
      const d = e.data;
      await touchService(db, e.service, e.time);
      await query(
        db,
        `INSERT INTO verdicts (message_id, service, allowed, reasons, evaluated_at, cause_id, verdict)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING`,
        [
          e.id,
          e.service,
          d.allowed,
          JSON.stringify(d.reasons),
          d.evaluatedAt,
          d.causeId,
          d.verdict,
        ],
      );
      await query(
        db,
        `UPDATE services SET verdict_allowed = $2, verdict_reasons = $3, verdict_at = $4,
           verdict_message_id = $5, verdict_kind = $6, verdict_evidence_age = $7
         WHERE name = $1 AND (verdict_at IS NULL OR verdict_at <= $4)`,
        [
          e.service,
          d.allowed,
          JSON.stringify(d.reasons),
          d.evaluatedAt,
          e.id,
          d.verdict,
          d.evidenceAge,
        ],
      );
      return "projected";
    }
    case "governance.guard-failed": {
      const d = e.data;
      await touchService(db, e.service, e.time);
      await query(
        db,
        `INSERT INTO guards (id, service, train, train_id, step, reason, evidence, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET train = EXCLUDED.train, train_id = EXCLUDED.train_id,
           step = EXCLUDED.step, reason = EXCLUDED.reason, evidence = EXCLUDED.evidence,
           at = EXCLUDED.at`,
        [
          d.guardId,
          e.service,
          d.train,
          d.trainId,
          d.step,
          d.reason,
          JSON.stringify(d.evidence),
          d.at,
        ],
      );
      return "projected";
    }
    case "governance.guard-cleared": {
      const d = e.data;
      await query(
        db,
        `INSERT INTO guards (id, service, cleared_at, cleared_by, clear_reason, cleared_how)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET cleared_at = EXCLUDED.cleared_at,
           cleared_by = EXCLUDED.cleared_by, clear_reason = EXCLUDED.clear_reason,
           cleared_how = EXCLUDED.cleared_how`,
        [d.guardId, e.service, d.at, d.actor, d.reason, d.by],
      );
      return "projected";
    }
    case "incidents.opened": {
      const d = e.data;
      await touchService(db, e.service, e.time);
      // No conflict target: a clash with the one-active-incident index inserts nothing rather
      // than failing the transaction (a savepoint per opening made every batch a subtransaction
      // each, which PostgreSQL handles slowly beyond 64 in one transaction).
      const inserted = await db.query(
        `INSERT INTO incidents (id, service, slo, state, severity, class, opened_at, updated_at,
           cause_id, reason, message_id)
         VALUES ($1, $2, $3, COALESCE((SELECT to_state FROM incident_transitions
           WHERE incident_id = $1 ORDER BY at DESC, to_state DESC LIMIT 1), 'detected'),
           $4, $5, $6, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING`,
        [
          d.incidentId,
          e.service,
          d.slo,
          d.severity,
          d.class,
          d.openedAt,
          d.causeId,
          d.reason,
          e.id,
        ],
      );
      if (inserted.rowCount === 0) {
        // Nothing inserted: either it is projected already (its id), or the only other unique
        // index of the table, one active incident per service, refused it.
        const known = await query(db, "SELECT 1 FROM incidents WHERE id = $1", [d.incidentId]);
        if (known.length === 0) return { refused: ACTIVE_INCIDENT_INDEX };
      }
      // The opening is the timeline's first entry, as the incident service reports it.
      await query(
        db,
        `INSERT INTO incident_transitions (incident_id, service, from_state, to_state, at, actor,
           reason, link, message_id)
         VALUES ($1, $2, NULL, 'detected', $3, 'system', $4, NULL, $5)
         ON CONFLICT ON CONSTRAINT incident_transitions_once DO NOTHING`,
        [d.incidentId, e.service, d.openedAt, d.reason, e.id],
      );
      await refreshIncident(db, d.incidentId);
      return "projected";
    }
    case "incidents.transitioned": {
      const d = e.data;
      await query(
        db,
        `INSERT INTO incident_transitions (incident_id, service, from_state, to_state, at, actor,
           reason, link, message_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT ON CONSTRAINT incident_transitions_once DO NOTHING`,
        [d.incidentId, e.service, d.from, d.to, d.at, d.actor, d.reason, d.link ?? null, e.id],
      );
      await refreshIncident(db, d.incidentId);
      if (!ACTIVE_INCIDENT_STATES.includes(d.to))
        await reopenRefused(db, e.service, options.pending ?? NONE_PENDING);
      return "projected";
    }
    case "incidents.escalated": {
      const d = e.data;
      await query(
        db,
        `UPDATE incidents SET severity = $2, class = $3, updated_at = GREATEST(updated_at, $4)
         WHERE id = $1`,
        [d.incidentId, d.severity, d.class, d.at],
      );
      return "projected";
    }
    case "governance.freeze-opened": {
      const d = e.data;
      await touchService(db, e.service, e.time);
      await query(
        db,
        `INSERT INTO freezes (id, service, from_at, until_at, reason, actor, origin)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET from_at = EXCLUDED.from_at, until_at = EXCLUDED.until_at,
           reason = EXCLUDED.reason, actor = EXCLUDED.actor, origin = EXCLUDED.origin`,
        [d.freezeId, e.service, d.from, d.until, d.reason, d.actor, d.origin],
      );
      return "projected";
    }
    case "governance.freeze-lifted": {
      const d = e.data;
      await query(
        db,
        `INSERT INTO freezes (id, service, lifted_at, lifted_by, lift_reason) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET lifted_at = EXCLUDED.lifted_at,
           lifted_by = EXCLUDED.lifted_by, lift_reason = EXCLUDED.lift_reason`,
        [d.freezeId, e.service, d.at, d.actor, d.reason],
      );
      return "projected";
    }
    case "governance.proposal-created": {
      const d = e.data;
      await touchService(db, e.service, e.time);
      await query(
        db,
        `INSERT INTO proposals (id, service, incident_id, kind, state, created_at, summary, plan,
           cause_id, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $5)
         ON CONFLICT (id) DO UPDATE SET incident_id = EXCLUDED.incident_id, kind = EXCLUDED.kind,
           created_at = EXCLUDED.created_at, summary = EXCLUDED.summary, plan = EXCLUDED.plan,
           cause_id = EXCLUDED.cause_id`,
        [
          d.proposalId,
          e.service,
          d.incidentId,
          d.kind,
          d.createdAt,
          d.summary,
          JSON.stringify(d.plan),
          d.causeId,
        ],
      );
      return "projected";
    }
    case "governance.proposal-approved": {
      const d = e.data;
      await query(
        db,
        `INSERT INTO approvals (proposal_id, by, at, reason, approved, message_id)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT approvals_once DO NOTHING`,
        [d.proposalId, d.by, d.at, d.reason, d.approved, e.id],
      );
      if (d.approved) await advanceProposal(db, d.proposalId, e.service, "approved", d.at);
      return "projected";
    }
    case "governance.proposal-rejected":
      await advanceProposal(db, e.data.proposalId, e.service, "rejected", e.data.at);
      return "projected";
    case "governance.proposal-superseded":
      await advanceProposal(db, e.data.proposalId, e.service, "superseded", e.data.at);
      return "projected";
    case "governance.action-completed": {
      const d = e.data;
      if (d.dryRun) {
        // A dry run shows what would be pushed; it never stands in for a real action nor
        // moves the proposal.
        await query(
          db,
          `INSERT INTO actions (proposal_id, outcome, at, branch, commit, pr_url, diff, dry_run,
             message_id, target)
           VALUES ($1, 'completed', $2, $3, $4, $5, $6, true, $7, $8)
           ON CONFLICT (proposal_id) DO NOTHING`,
          [d.proposalId, d.at, d.branch, d.commit, d.prUrl, d.diff, e.id, jsonOrNull(d.target)],
        );
        return "projected";
      }
      await query(
        db,
        `INSERT INTO actions (proposal_id, outcome, at, branch, commit, pr_url, diff, dry_run,
           message_id, target)
         VALUES ($1, 'completed', $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (proposal_id) DO UPDATE SET outcome = 'completed', at = EXCLUDED.at,
           branch = EXCLUDED.branch, commit = EXCLUDED.commit, pr_url = EXCLUDED.pr_url,
           diff = EXCLUDED.diff, dry_run = EXCLUDED.dry_run, reason = NULL, needs_triage = NULL,
           harm = NULL, target = EXCLUDED.target, message_id = EXCLUDED.message_id
         WHERE actions.outcome = 'failed' OR actions.dry_run OR actions.at <= EXCLUDED.at`,
        [
          d.proposalId,
          d.at,
          d.branch,
          d.commit,
          d.prUrl,
          d.diff,
          d.dryRun,
          e.id,
          jsonOrNull(d.target),
        ],
      );
      await advanceProposal(db, d.proposalId, e.service, "executed", d.at);
      return "projected";
    }
    case "governance.action-failed": {
      const d = e.data;
      if (d.dryRun === true) {
        // The preview could not be made (ambiguity shows before approval): kept beside the
        // proposal, never standing in for the real action nor moving the proposal.
        await query(
          db,
          `INSERT INTO actions (proposal_id, outcome, at, reason, needs_triage, dry_run, message_id,
             target, harm)
           VALUES ($1, 'failed', $2, $3, $4, true, $5, $6, $7)
           ON CONFLICT (proposal_id) DO NOTHING`,
          [d.proposalId, d.at, d.reason, d.needsTriage, e.id, jsonOrNull(d.target), d.harm ?? null],
        );
        // A preview that found the revert would re-apply harm: the proposal needs triage now.
        if (d.harm !== undefined) {
          await advanceProposal(db, d.proposalId, e.service, "needs-triage", d.at);
        }
        return "projected";
      }
      await query(
        db,
        `INSERT INTO actions (proposal_id, outcome, at, reason, needs_triage, dry_run, message_id,
           target, harm)
         VALUES ($1, 'failed', $2, $3, $4, false, $5, $6, $7)
         ON CONFLICT (proposal_id) DO UPDATE SET outcome = 'failed', at = EXCLUDED.at,
           reason = EXCLUDED.reason, needs_triage = EXCLUDED.needs_triage, dry_run = false,
           branch = NULL, commit = NULL, pr_url = NULL, diff = NULL, target = EXCLUDED.target,
           harm = EXCLUDED.harm, message_id = EXCLUDED.message_id
         WHERE actions.dry_run OR (actions.outcome = 'failed' AND actions.at <= EXCLUDED.at)`,
        [d.proposalId, d.at, d.reason, d.needsTriage, e.id, jsonOrNull(d.target), d.harm ?? null],
      );
      await advanceProposal(
        db,
        d.proposalId,
        e.service,
        d.needsTriage ? "needs-triage" : d.state,
        d.at,
      );
      return "projected";
    }
    default:
      return "ignored";
  }
}

const jsonOrNull = (value: unknown): string | null =>
  value === undefined ? null : JSON.stringify(value);

/** Moves a proposal forward (never back); creates its row if the creation is still to arrive. */
async function advanceProposal(
  db: Queryable,
  id: string,
  service: string,
  state: string,
  at: string,
): Promise<void> {
  await query(
    db,
    `INSERT INTO proposals (id, service, state, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
       updated_at = GREATEST(proposals.updated_at, EXCLUDED.updated_at)
     WHERE proposal_state_rank(EXCLUDED.state) > proposal_state_rank(proposals.state)`,
    [id, service, state, at],
  );
}

/** The types {@link projectEnvelope} applies; every other type it ignores. */
export const PROJECTED_TYPES: ReadonlySet<string> = new Set([
  "budget.evaluated",
  "governance.verdict",
  "governance.guard-failed",
  "governance.guard-cleared",
  "incidents.opened",
  "incidents.transitioned",
  "incidents.escalated",
  "governance.freeze-opened",
  "governance.freeze-lifted",
  "governance.proposal-created",
  "governance.proposal-approved",
  "governance.proposal-rejected",
  "governance.proposal-superseded",
  "governance.action-completed",
  "governance.action-failed",
]);

/** The types whose projection records the service (`touchService`) at the envelope's time. */
const TOUCHING: ReadonlySet<string> = new Set([
  "budget.evaluated",
  "governance.verdict",
  "governance.guard-failed",
  "incidents.opened",
  "governance.freeze-opened",
  "governance.proposal-created",
]);

/** A read-model invariant that refused an envelope of a batch. */
export interface Refusal {
  readonly messageId: string;
  readonly constraint: string;
}

/**
 * Applies a batch of envelopes (in stream order) to the read model, with the same outcome as
 * {@link projectEnvelope} one after another, in a few statements for the frequent types:
 * every evaluation in one upsert and every verdict in one insert and one update (each keeps the
 * newest by evidence time, the later one on a tie, as applying them in order does: nothing else
 * reads those tables or columns), and every service touched at once (the latest time wins either
 * way, in name order so concurrent batches lock rows alike; no other projection reads the row).
 * The rest are applied one by one in order, as before.
 */
export async function projectEnvelopes(
  db: Queryable,
  envelopes: readonly Envelope[],
): Promise<Refusal[]> {
  await upsertEvaluations(db, envelopes.filter(isEvaluation));
  const refused: Refusal[] = [];
  // The batch's openings not projected yet (see reopenRefused).
  const pending = new Set(
    envelopes.flatMap((e) => (e.type === "incidents.opened" ? [e.data.incidentId] : [])),
  );
  for (const e of envelopes) {
    if (isEvaluation(e) || isVerdict(e)) continue;
    if (e.type === "incidents.opened") pending.delete(e.data.incidentId);
    const outcome = await projectEnvelope(db, e, { touched: true, pending });
    if (typeof outcome === "object") refused.push({ messageId: e.id, constraint: outcome.refused });
  }
  // Last, just before the commit: every stream's batches touch the same service rows, and a row
  // locked early stays locked while the rest of a long batch is applied.
  const touches = envelopes.filter((e) => TOUCHING.has(e.type));
  if (touches.length > 0) {
    await query(
      db,
      `INSERT INTO services (name, updated_at)
       SELECT name, max(at) FROM unnest($1::text[], $2::timestamptz[]) AS t(name, at)
       GROUP BY name ORDER BY name
       ON CONFLICT (name) DO UPDATE SET updated_at = GREATEST(services.updated_at, EXCLUDED.updated_at)`,
      [touches.map((e) => e.service), touches.map((e) => e.time)],
    );
  }
  await recordVerdicts(db, envelopes.filter(isVerdict));
  return refused;
}

const isEvaluation = (e: Envelope): e is Envelope<"budget.evaluated"> =>
  e.type === "budget.evaluated";
const isVerdict = (e: Envelope): e is Envelope<"governance.verdict"> =>
  e.type === "governance.verdict";

/** One row of `evaluations`: an SLO of a service's evaluation message. */
interface EvaluationRow {
  readonly service: string;
  readonly messageId: string;
  readonly snapshotId: string;
  readonly slo: EvaluatedSlo;
}

/** The latest evaluation per (service, SLO); an older one arriving late never overwrites it. */
async function upsertEvaluations(
  db: Queryable,
  evaluations: readonly Envelope<"budget.evaluated">[],
): Promise<void> {
  const rows: EvaluationRow[] = evaluations.flatMap((e) =>
    e.data.slos.map((slo) => ({
      service: e.service,
      messageId: e.id,
      snapshotId: e.data.snapshotId,
      slo,
    })),
  );
  if (rows.length === 0) return;
  const column = <T>(pick: (row: EvaluationRow) => T) => rows.map(pick);
  await query(
    db,
    `INSERT INTO evaluations (service, slo, severity, budget_remaining, error_ratio, objective,
       explanation, evaluated_at, snapshot_id, message_id, burn, budget)
     SELECT DISTINCT ON (service, slo) service, slo, severity, budget_remaining, error_ratio,
       objective, explanation, evaluated_at, snapshot_id, message_id, burn, budget
     FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[],
       $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[])
       WITH ORDINALITY AS t(service, slo, severity, budget_remaining, error_ratio, objective,
         explanation, evaluated_at, snapshot_id, message_id, burn, budget, ord)
     ORDER BY service, slo, evaluated_at DESC, ord DESC
     ON CONFLICT (service, slo) DO UPDATE SET
       severity = EXCLUDED.severity, budget_remaining = EXCLUDED.budget_remaining,
       burn = EXCLUDED.burn, budget = EXCLUDED.budget,
       error_ratio = EXCLUDED.error_ratio, objective = EXCLUDED.objective,
       explanation = EXCLUDED.explanation, evaluated_at = EXCLUDED.evaluated_at,
       snapshot_id = EXCLUDED.snapshot_id, message_id = EXCLUDED.message_id
     WHERE evaluations.evaluated_at <= EXCLUDED.evaluated_at`,
    [
      column((r) => r.service),
      column((r) => r.slo.slo),
      column((r) => r.slo.severity),
      column((r) => r.slo.budgetRemaining),
      column((r) => r.slo.errorRatio),
      column((r) => r.slo.objective),
      column((r) => r.slo.explanation),
      column((r) => r.slo.evaluatedAt),
      column((r) => r.snapshotId),
      column((r) => r.messageId),
      column((r) => r.slo.burn),
      column((r) => r.slo.budget),
    ],
  );
}

async function recordVerdicts(
  db: Queryable,
  verdicts: readonly Envelope<"governance.verdict">[],
): Promise<void> {
  if (verdicts.length === 0) return;
  const column = <T>(pick: (e: Envelope<"governance.verdict">) => T) => verdicts.map(pick);
  const params = [
    column((e) => e.id),
    column((e) => e.service),
    column((e) => e.data.allowed),
    column((e) => JSON.stringify(e.data.reasons)),
    column((e) => e.data.evaluatedAt),
    column((e) => e.data.causeId),
    column((e) => e.data.verdict),
    column((e) => e.data.evidenceAge),
  ];
  const rows = `unnest($1::text[], $2::text[], $3::boolean[], $4::jsonb[], $5::timestamptz[],
       $6::text[], $7::text[], $8::float8[]) WITH ORDINALITY AS t(message_id, service, allowed,
       reasons, evaluated_at, cause_id, verdict, evidence_age, ord)`;
  // The first of a repeated id is kept, as ON CONFLICT DO NOTHING one by one keeps it.
  await query(
    db,
    `INSERT INTO verdicts (message_id, service, allowed, reasons, evaluated_at, cause_id, verdict)
     SELECT DISTINCT ON (message_id) message_id, service, allowed, reasons, evaluated_at,
       cause_id, verdict
     FROM ${rows} ORDER BY message_id, ord
     ON CONFLICT (message_id) DO NOTHING`,
    params,
  );
  await query(
    db,
    `UPDATE services s SET verdict_allowed = v.allowed, verdict_reasons = v.reasons,
       verdict_at = v.evaluated_at, verdict_message_id = v.message_id, verdict_kind = v.verdict,
       verdict_evidence_age = v.evidence_age
     FROM (SELECT DISTINCT ON (service) * FROM ${rows}
           ORDER BY service, evaluated_at DESC, ord DESC) v
     WHERE s.name = v.service AND (s.verdict_at IS NULL OR s.verdict_at <= v.evaluated_at)`,
    params,
  );
}
