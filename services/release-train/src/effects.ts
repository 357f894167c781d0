import {
  detectRegression,
  effectOf,
  evaluateHealthCheck,
  promotionProposalId,
  verdictOfGateView,
} from "@safedeploy/core";
import type {
  ChangeRequest,
  CheckResult,
  CheckTarget,
  StepReport,
  TrainAction,
  TrainEffect,
  TrainEvent,
} from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, HealthCheck } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import type { TrainRecord } from "./store.js";

/** The proposal id (and so the branch `safedeploy/<id>`) of a train step's promotion. */
export const promotionId = promotionProposalId;

/** A change asked of the git actuator, as core decided it (an approved action, or a preview). */
function changeEnvelope(record: TrainRecord, change: ChangeRequest): Envelope {
  return createEnvelope(
    {
      type: change.type,
      id: messageId(change.type, change.proposalId),
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
        verdict: verdictOfGateView(view),
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

type Effect<K extends TrainEffect["kind"]> = Extract<TrainEffect, { kind: K }>;

/**
 * Asks the proposal service for the revert of one step's service (`proposal.revert`): a pending
 * rollback-rollout proposal of the service's path only, which a person approves. Idempotent: the
 * cause names the train and step, so asking again finds the same proposal.
 */
async function proposeRevert(
  deps: TrainDeps,
  record: TrainRecord,
  effect: Effect<"propose-revert">,
  now: string,
): Promise<ActionResult> {
  const { service, path, causeId, commit, reason } = effect;
  const proposal = await deps.requestRevert({
    ...{ service, path, causeId, reason, actor: record.actor, at: now },
    ...(commit === null ? {} : { commit }),
  });
  return { revert: { proposalId: proposal.id, service, step: effect.step } };
}

/**
 * Asks the proposal service for a step's promotion proposal (`proposal.promotion`): created once
 * (the id names the train and step), with the train's starter as its first approval. What it
 * answers comes back as `approval-answered`; who rejected it, when this service heard.
 */
async function requestApproval(
  deps: TrainDeps,
  record: TrainRecord,
  action: Effect<"request-approval">,
): Promise<ActionResult> {
  const { proposalId, service, step, summary, plan, at } = action;
  const proposal = await deps.requestPromotion({
    ...{ proposalId, service, trainId: record.id, step, summary, plan, actor: record.actor, at },
  });
  const rejected = (record.decisions[String(step)] ?? []).find((d) => d.kind === "rejected");
  const { state, approvals, required } = proposal;
  deps.log.info(
    { train: record.id, step: step + 1, proposal: proposal.id, state, required },
    "promotion proposal answered",
  );
  return {
    event: {
      type: "approval-answered",
      step,
      state,
      required: required ?? null,
      approvals: approvals.map((a) => ({ by: a.by, at: a.at })),
      rejection: rejected === undefined ? null : { by: rejected.by, reason: rejected.reason },
    },
  };
}

/** Blocks a failing service's gate (`guard.fail`), as core worded it. */
async function failGuard(deps: TrainDeps, effect: Effect<"fail-guard">): Promise<ActionResult> {
  const { service, train, trainId, step, reason, evidence, at } = effect;
  const guard = await deps.failGuard({
    ...{ service, train, trainId, step, reason, at },
    evidence: [...evidence],
  });
  deps.log.warn(
    { train: effect.trainId, step: effect.step + 1, service: effect.service, guard: guard.id },
    "guard failed: the service's gate blocks until its revert is executed or it is cleared",
  );
  return { guard: { service: effect.service, guardId: guard.id } };
}

async function askGate(deps: TrainDeps, effect: Effect<"ask-gate">): Promise<ActionResult> {
  const view = await deps.gate(effect.service);
  const verdict = verdictOfGateView(view);
  deps.log.info(
    { step: effect.step + 1, service: effect.service, verdict },
    "gate asked before promotion",
  );
  const { reasons, evidenceAge } = view;
  return { event: { type: "gate-answered", step: effect.step, verdict, reasons, evidenceAge } };
}

async function probeDeployed(
  deps: TrainDeps,
  effect: Effect<"probe-deployed">,
): Promise<ActionResult> {
  const result = await runCheck(deps, effect.check);
  deps.log.info(
    { step: effect.step + 1, url: result.url, outcome: result.outcome },
    "deployedWhen probed",
  );
  return { event: { type: "deploy-probed", step: effect.step, result } };
}

async function runChecks(
  deps: TrainDeps,
  effect: Effect<"run-checks" | "run-final-checks" | "run-follow-up">,
  now: string,
): Promise<ActionResult> {
  if (effect.kind === "run-checks") {
    const reports = await reportTargets(deps, effect.targets, now, effect.step);
    const event: TrainEvent = { type: "checks-reported", step: effect.step, reports };
    return { event, evidence: evidenceOf(reports) };
  }
  const checks = await Promise.all(effect.checks.map((check) => runCheck(deps, check)));
  const reports = await reportTargets(deps, effect.targets, now, null);
  if (effect.kind === "run-follow-up") {
    return { event: { type: "follow-up-reported", index: effect.index, checks, reports } };
  }
  const event: TrainEvent = { type: "final-checks-reported", checks, reports };
  return { event, evidence: evidenceOf(reports) };
}

async function callHook(deps: TrainDeps, effect: Effect<"call-hook">): Promise<ActionResult> {
  const response = await deps.callHook(effect);
  const { step, hook, url } = effect;
  const { ok, status, detail } = response;
  deps.log.info({ step: step + 1, hook, url, ok, status }, "strategy hook called");
  return { event: { type: "hook-reported", step, hook, ok, status, detail } };
}

/**
 * Does one decided action: core's {@link effectOf} says what (or that nothing is left to do);
 * each effect goes to its adapter, and what answers comes back as an event. Every effect is
 * idempotent, so doing one twice after a crash changes nothing.
 */
export async function performAction(
  deps: TrainDeps,
  record: TrainRecord,
  action: TrainAction,
): Promise<ActionResult> {
  const now = deps.now();
  const effect = effectOf(record.state, action, now);
  if (effect === null) return {};
  switch (effect.kind) {
    case "request-change":
      await deps.publish(changeEnvelope(record, effect));
      return {};
    case "ask-gate":
      return askGate(deps, effect);
    case "request-approval":
      return requestApproval(deps, record, effect);
    case "fail-guard":
      return failGuard(deps, effect);
    case "probe-deployed":
      return probeDeployed(deps, effect);
    case "run-checks":
    case "run-final-checks":
    case "run-follow-up":
      return runChecks(deps, effect, now);
    case "propose-revert":
      return proposeRevert(deps, record, effect, now);
    case "manual-triage":
      deps.log.warn(
        { train: record.id, reason: effect.reason, evidence: effect.evidence },
        "release train needs manual triage; nothing reverted",
      );
      return {};
    case "call-hook":
      return callHook(deps, effect);
  }
}
