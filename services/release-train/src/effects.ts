import {
  detectRegression,
  evaluateHealthCheck,
  promotionPlan,
  promotionProposalId,
} from "@safedeploy/core";
import type {
  CheckResult,
  CheckTarget,
  StepReport,
  TrainAction,
  TrainEvent,
  PromotionPlan,
  TrainState,
} from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, GateVerdictKind, GateView, HealthCheck } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import type { TrainRecord } from "./store.js";

/** The proposal id (and so the branch `safedeploy/<id>`) of a train step's promotion. */
export const promotionId = promotionProposalId;

/**
 * A change of the train asked of the git actuator: an approved action, or, in a dry run, a
 * preview (its own event type: a dry run is never an action).
 */
function changeRequest(
  record: TrainRecord,
  change: {
    readonly proposalId: string;
    readonly service: string;
    readonly requestedAt: string;
    readonly plan: PromotionPlan;
  },
): Envelope {
  const type = record.state.dryRun ? "governance.preview-requested" : "governance.action-requested";
  return createEnvelope(
    {
      type,
      id: messageId(type, change.proposalId),
      service: change.service,
      data: {
        proposalId: change.proposalId,
        kind: "promote-release",
        incidentId: null,
        requestedAt: change.requestedAt,
        plan: change.plan,
      },
    },
    { source: "release-train", time: change.requestedAt, correlationId: record.id },
  );
}

/** What doing an action yielded: an event to feed the state machine, and evidence to keep. */
export interface ActionResult {
  readonly event?: TrainEvent;
  readonly evidence?: Readonly<Record<string, unknown[]>>;
  readonly revert?: TrainRecord["revert"];
  /** A guard this train failed: the service's gate blocks until it is cleared. */
  readonly guard?: { readonly service: string; readonly guardId: string };
}

/**
 * The gate's verdict, failing closed: an answer that claims `pass` without `allowed` (or the
 * reverse) is not a pass.
 */
export function verdictOfView(view: GateView): GateVerdictKind {
  if (view.verdict === "pass") return view.allowed ? "pass" : "block";
  return view.verdict;
}

/** How much of a reason and of each evidence line `guard.fail` carries (its schema's limits). */
const GUARD_REASON_CHARS = 2_000;
const GUARD_EVIDENCE_LINES = 100;

const clip = (text: string, chars: number) =>
  text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;

/** The shortest window a regression compares: Prometheus needs a few scrapes in each. */
export const MIN_WINDOW_MS = 5_000;

async function runCheck(deps: TrainDeps, check: HealthCheck): Promise<CheckResult> {
  return evaluateHealthCheck(check, await deps.probe(check));
}

/**
 * Health checks, regression and (for `gateStep`) the SLO gate of each target, at `now`. The
 * regression compares the window after each target's recorded deploy time (until now) with one
 * of the same length before it, at least {@link MIN_WINDOW_MS} long.
 */
async function reportTargets(
  deps: TrainDeps,
  targets: readonly CheckTarget[],
  now: string,
  gateStep: number | null,
): Promise<StepReport[]> {
  const reports: StepReport[] = [];
  for (const target of targets) {
    const checks = await Promise.all(target.checks.map((check) => runCheck(deps, check)));
    let regression = null;
    if (target.regression !== null) {
      const windowMs = Math.max(Date.parse(now) - Date.parse(target.deployedAt), MIN_WINDOW_MS);
      const measured = await deps.measureErrors(target.service, {
        deployedAt: target.deployedAt,
        windowMs,
        now,
      });
      regression = detectRegression(measured.before, measured.after, target.regression);
    }
    let gate = null;
    if (target.step === gateStep) {
      const view = await deps.gate(target.service);
      gate = {
        allowed: view.allowed,
        verdict: verdictOfView(view),
        reasons: view.reasons.map((r) => `${r.code}: ${r.message}`),
      };
    }
    reports.push({
      step: target.step,
      service: target.service,
      checks,
      regression,
      ...(gate === null ? {} : { gate }),
    });
  }
  return reports;
}

function evidenceOf(reports: readonly StepReport[]): Record<string, unknown[]> {
  return Object.fromEntries(
    reports.map((report) => [
      String(report.step),
      [
        ...report.checks.map((check) => ({ type: "health", ...check })),
        ...(report.regression === null ? [] : [{ type: "regression", ...report.regression }]),
        ...(report.gate === undefined || report.gate === null
          ? []
          : [{ type: "gate", ...report.gate }]),
      ],
    ]),
  );
}

/**
 * Asks the proposal service for the revert of one step's service (`proposal.revert`): a pending
 * rollback-rollout proposal of the service's path only, which a person approves. Idempotent: the
 * cause names the train and step, so asking again finds the same proposal.
 */
async function proposeRevert(
  deps: TrainDeps,
  record: TrainRecord,
  action: Extract<TrainAction, { kind: "propose-revert" }>,
  now: string,
): Promise<ActionResult> {
  const proposal = await deps.requestRevert({
    service: action.service,
    path: action.path,
    causeId: `${record.id}:step-${action.step + 1}`,
    ...(action.commit === null ? {} : { commit: action.commit }),
    reason: `release train ${record.document.metadata.name}, step ${action.step + 1}: ${action.reason}`,
    actor: record.actor,
    at: now,
  });
  return { revert: { proposalId: proposal.id, service: action.service, step: action.step } };
}

/**
 * Asks the proposal service for a step's promotion proposal (`proposal.promotion`): created once
 * (the id names the train and step), with the train's starter as its first approval. What it
 * answers comes back as `approval-answered`; who rejected it, when this service heard.
 */
async function requestApproval(
  deps: TrainDeps,
  record: TrainRecord,
  action: Extract<TrainAction, { kind: "request-approval" }>,
): Promise<ActionResult> {
  const proposal = await deps.requestPromotion({
    proposalId: action.proposalId,
    service: action.service,
    trainId: record.id,
    step: action.step,
    summary: action.summary,
    plan: action.plan,
    actor: record.actor,
    at: action.at,
  });
  const rejected = (record.decisions[String(action.step)] ?? []).find((d) => d.kind === "rejected");
  deps.log.info(
    {
      train: record.id,
      step: action.step + 1,
      proposal: proposal.id,
      state: proposal.state,
      approvals: proposal.approvals.length,
      required: proposal.required,
    },
    "promotion proposal answered",
  );
  return {
    event: {
      type: "approval-answered",
      step: action.step,
      state: proposal.state,
      required: proposal.required ?? null,
      approvals: proposal.approvals.map((a) => ({ by: a.by, at: a.at })),
      rejection: rejected === undefined ? null : { by: rejected.by, reason: rejected.reason },
    },
  };
}

/**
 * Blocks a failing service's gate (`guard.fail`), with the time and evidence of the decision, so
 * a retry asks the same and the policy service keeps one guard per train, step and service.
 */
async function failGuard(
  deps: TrainDeps,
  record: TrainRecord,
  action: Extract<TrainAction, { kind: "fail-guard" }>,
): Promise<ActionResult> {
  const guard = await deps.failGuard({
    service: action.service,
    train: record.document.metadata.name,
    trainId: record.id,
    step: action.step,
    // Why the train halted and what this service failed (its own checks); the gate's message
    // names the train and step already.
    reason: clip(
      [
        action.reason,
        ...action.evidence
          .filter((line) => line.startsWith(`step ${action.step + 1} ${action.service}:`))
          .slice(0, 2),
      ].join(" — "),
      GUARD_REASON_CHARS,
    ),
    evidence: action.evidence
      .slice(0, GUARD_EVIDENCE_LINES)
      .map((line) => clip(line, GUARD_REASON_CHARS)),
    at: action.at,
  });
  deps.log.warn(
    { train: record.id, step: action.step + 1, service: action.service, guard: guard.id },
    "guard failed: the service's gate blocks until its revert is executed or it is cleared",
  );
  return { guard: { service: action.service, guardId: guard.id } };
}

/**
 * Does one decided action. The gate is asked and the promotion proposal requested here (their
 * answers come back as events); promotions are requested from the git actuator (the outcome comes
 * back through GOVERNANCE); checks and strategy hook calls run here and come back as an event; a
 * failing service's guard is failed and its revert proposed. Timers (`wait`,
 * `schedule-follow-up`) need nothing: their due time is in the state. Every action is
 * idempotent, so doing one twice after a crash changes nothing.
 */
export async function performAction(
  deps: TrainDeps,
  record: TrainRecord,
  action: TrainAction,
): Promise<ActionResult> {
  const state: TrainState = record.state;
  const now = deps.now();
  switch (action.kind) {
    case "promote": {
      const proposalId = promotionId(record.id, action.step);
      const requestedAt = state.steps[action.step]?.promotingAt ?? now;
      await deps.publish(
        changeRequest(record, {
          proposalId,
          service: action.service,
          requestedAt,
          plan: promotionPlan(action.change),
        }),
      );
      return {};
    }
    case "wait":
    case "schedule-follow-up":
      return {};
    case "ask-gate": {
      const view = await deps.gate(action.service);
      const verdict = verdictOfView(view);
      deps.log.info(
        { train: record.id, step: action.step + 1, service: action.service, verdict },
        "gate asked before promotion",
      );
      return {
        event: {
          type: "gate-answered",
          step: action.step,
          verdict,
          reasons: view.reasons,
          evidenceAge: view.evidenceAge,
        },
      };
    }
    case "request-approval":
      if (state.dryRun) return {}; // never decided in a dry run: it creates no proposal
      return requestApproval(deps, record, action);
    case "fail-guard":
      if (state.dryRun) return {};
      return failGuard(deps, record, action);
    case "probe-deployed": {
      const result = await runCheck(deps, action.check);
      deps.log.info(
        { train: record.id, step: action.step + 1, url: result.url, outcome: result.outcome },
        "deployedWhen probed",
      );
      return { event: { type: "deploy-probed", step: action.step, result } };
    }
    case "run-checks": {
      const reports = await reportTargets(deps, action.targets, now, action.step);
      return {
        event: { type: "checks-reported", step: action.step, reports },
        evidence: evidenceOf(reports),
      };
    }
    case "run-final-checks": {
      const checks = await Promise.all(action.checks.map((check) => runCheck(deps, check)));
      const reports = await reportTargets(deps, action.targets, now, null);
      return {
        event: { type: "final-checks-reported", checks, reports },
        evidence: evidenceOf(reports),
      };
    }
    case "run-follow-up": {
      const checks = await Promise.all(action.checks.map((check) => runCheck(deps, check)));
      const reports = await reportTargets(deps, action.targets, now, null);
      return { event: { type: "follow-up-reported", index: action.index, checks, reports } };
    }
    case "propose-revert":
      if (state.dryRun) return {}; // a dry run reports what it would propose, proposes nothing
      return proposeRevert(deps, record, action, now);
    case "manual-triage":
      deps.log.warn(
        { train: record.id, reason: action.reason, evidence: action.evidence },
        "release train needs manual triage; nothing reverted",
      );
      return {};
    case "apply-manifest-hook": {
      // Requested until the actuator's outcome is recorded; asking again is deduplicated by id.
      const requested = state.steps[action.step]?.hooks?.find((h) => h.hook === action.hook);
      if (requested?.outcome !== "requested") return {};
      await deps.publish(
        changeRequest(record, {
          proposalId: action.actionId,
          service: action.service,
          requestedAt: requested.at,
          plan: {
            action: "patch-manifest",
            path: action.path,
            patch: action.patch,
            hook: action.hook,
          },
        }),
      );
      return {};
    }
    case "call-hook": {
      // Once its outcome is recorded a hook is never called again (a retry after a crash before
      // the record was saved calls again, with the same Idempotency-Key).
      const step = state.steps[action.step];
      if (state.dryRun || (step?.hooks ?? []).some((h) => h.hook === action.hook)) return {};
      const response = await deps.callHook(action);
      deps.log.info(
        {
          train: record.id,
          step: action.step + 1,
          hook: action.hook,
          url: action.url,
          ok: response.ok,
          status: response.status,
        },
        "strategy hook called",
      );
      return {
        event: {
          type: "hook-reported",
          step: action.step,
          hook: action.hook,
          ok: response.ok,
          status: response.status,
          detail: response.detail,
        },
      };
    }
  }
}
