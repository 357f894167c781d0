import { authorizeAction, authorizingProposalId } from "@safedeploy/core";
import type { Proposal, RefusalCode } from "@safedeploy/core";
import { InvalidChangeError, reviewFor } from "@safedeploy/git";
import type { ChangeOutcome, EnvRepo, Forge, NeedsTriage } from "@safedeploy/git";
import { TerminalError } from "@safedeploy/jetstream";
import type { Logger } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, RevertTarget } from "@safedeploy/schema";
import { gitPlanFor } from "./plan.js";

export interface ActuatorDeps {
  readonly repo: Pick<EnvRepo, "apply" | "baseBranch">;
  readonly forge: Forge;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  readonly now: () => string;
  /** `SAFEDEPLOY_DRY_RUN`: every action is a dry run. */
  readonly dryRun: boolean;
  readonly log: Logger;
  /** The proposal as the proposal service keeps it (read-only), or null when there is none. */
  readonly proposalOf: (proposalId: string) => Promise<Proposal | null>;
  /** Counts a request refused, by why. */
  readonly refused: (code: RefusalCode) => void;
}

/** An approved action, or a preview of one (a dry run: computed, never pushed). */
type Requested = Envelope<"governance.action-requested"> | Envelope<"governance.preview-requested">;

/** A dry run when it is a preview, or when the actuator runs with `SAFEDEPLOY_DRY_RUN`. */
const isDryRun = (deps: ActuatorDeps, requested: Requested) =>
  deps.dryRun || requested.type === "governance.preview-requested";

/** What a needs-triage outcome tells the proposal service beyond its reason. */
type TriageDetail = Partial<Pick<NeedsTriage, "unchanged" | "harm" | "target">>;

/** The triage detail an outcome carries, leaving out what it does not (never `undefined`). */
function triageDetail(outcome: NeedsTriage): TriageDetail {
  return {
    ...(outcome.unchanged === undefined ? {} : { unchanged: outcome.unchanged }),
    ...(outcome.harm === undefined ? {} : { harm: outcome.harm }),
    ...(outcome.target === undefined ? {} : { target: outcome.target }),
  };
}

function isRetryable(error: unknown): boolean {
  return typeof error === "object" && error !== null && "retryable" in error
    ? error.retryable !== false
    : true;
}

/** What an action completed with: its branch, commit, pull request and diff. */
interface Completion {
  readonly branch: string;
  readonly commit: string;
  readonly prUrl: string | null;
  readonly diff: string;
  readonly dryRun: boolean;
  readonly target?: RevertTarget;
}

function completed(deps: ActuatorDeps, requested: Requested, fields: Completion) {
  const at = deps.now();
  const { proposalId, incidentId, kind } = requested.data;
  return deps.publish(
    createEnvelope(
      {
        type: "governance.action-completed",
        // A dry run must not take the id of the real result that may follow it.
        id: fields.dryRun
          ? messageId("governance.action-completed", proposalId, "dry-run")
          : messageId("governance.action-completed", proposalId),
        service: requested.service,
        data: { proposalId, incidentId, kind, at, ...fields },
      },
      { source: "git-actuator", time: at, causedBy: requested },
    ),
  );
}

function failed(
  deps: ActuatorDeps,
  requested: Requested,
  reason: string,
  needsTriage: boolean,
  detail: TriageDetail = {},
) {
  const at = deps.now();
  const { proposalId } = requested.data;
  const dryRun = isDryRun(deps, requested);
  return deps.publish(
    createEnvelope(
      {
        type: "governance.action-failed",
        // A dry run's failure must not take the id (and so the place) of the real one.
        id: dryRun
          ? messageId("governance.action-failed", proposalId, "dry-run")
          : messageId("governance.action-failed", proposalId),
        service: requested.service,
        data: {
          proposalId,
          at,
          reason,
          needsTriage,
          // A terminal failure that is not ambiguity leaves the proposal approved, to retry by hand.
          state: needsTriage ? "needs-triage" : "approved",
          ...(dryRun ? { dryRun: true } : {}),
          // For a revert also its harm and target: even a preview's harm means needs-triage.
          ...detail,
        },
      },
      { source: "git-actuator", time: at, causedBy: requested },
    ),
  );
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Opens (or finds) the pull request of a pushed change; resolves its URL, or null when the forge
 * refused it for good (reported as a failed action). A retryable refusal is thrown.
 */
async function review(
  deps: ActuatorDeps,
  requested: Requested,
  outcome: Exclude<ChangeOutcome, NeedsTriage>,
  log: Logger,
): Promise<{ prUrl: string | null } | null> {
  if (outcome.status === "dry-run") {
    log.info({ branch: outcome.branch, commit: outcome.commit, diff: outcome.diff }, "dry run");
    return { prUrl: null };
  }
  try {
    const opened = await deps.forge.openChange(
      reviewFor(requested.data, outcome, deps.repo.baseBranch),
    );
    log.info(
      {
        branch: outcome.branch,
        commit: outcome.commit,
        prUrl: opened.prUrl,
        reused: opened.reused,
        pushed: outcome.status,
      },
      "change proposed",
    );
    return { prUrl: opened.prUrl };
  } catch (error) {
    if (isRetryable(error)) throw error;
    log.error({ err: error, branch: outcome.branch }, "the forge refused the pull request");
    await failed(deps, requested, messageOf(error), false);
    return null;
  }
}

/** Makes one action's change in the repo and reports it: completed, failed, or thrown to retry. */
async function execute(deps: ActuatorDeps, requested: Requested): Promise<void> {
  const { proposalId, incidentId, kind, requestedAt } = requested.data;
  const dryRun = isDryRun(deps, requested);
  const log = deps.log.child({ proposal: proposalId, service: requested.service, kind, dryRun });
  const plan = gitPlanFor(kind, requested.data.plan);
  if (plan.kind === "none") {
    log.info({}, "no git change for this kind; action completed");
    await completed(deps, requested, { branch: "", commit: "", prUrl: null, diff: "", dryRun });
    return;
  }
  if (plan.kind === "invalid") {
    log.warn({ reason: plan.reason }, "action needs triage");
    await failed(deps, requested, plan.reason, true);
    return;
  }
  let outcome: ChangeOutcome;
  try {
    outcome = await deps.repo.apply({
      proposalId,
      incidentId,
      kind,
      requestedAt,
      change: plan.change,
      dryRun,
    });
  } catch (error) {
    if (isRetryable(error)) throw error;
    log.error({ err: error }, "action failed");
    await failed(deps, requested, messageOf(error), error instanceof InvalidChangeError);
    return;
  }
  if (outcome.status === "needs-triage") {
    log.warn(
      { reason: outcome.reason, harm: outcome.harm, target: outcome.target?.commit },
      "action needs triage; nothing pushed",
    );
    await failed(deps, requested, outcome.reason, true, triageDetail(outcome));
    return;
  }
  const reviewed = await review(deps, requested, outcome, log);
  if (reviewed === null) return;
  await completed(deps, requested, {
    branch: outcome.branch,
    commit: outcome.commit,
    prUrl: reviewed.prUrl,
    diff: outcome.diff,
    dryRun,
    ...(outcome.target === undefined ? {} : { target: outcome.target }),
  });
}

// What a KV key may hold: a proposal id outside it names no proposal (and cannot be looked up).
const isKvKey = (id: string) =>
  /^[-/_=.a-zA-Z0-9]+$/.test(id) && !id.startsWith(".") && !id.endsWith(".") && !id.includes("..");

/**
 * Whether to act on an approved action, checked against its proposal's own state rather than the
 * message: true to act, false when it was executed already. A refused request (no proposal, not
 * approved by enough distinct people, another plan) is counted and thrown as terminal, so it is
 * dead-lettered with its reason and nothing is pushed. A preview pushes nothing: no check.
 */
async function authorized(deps: ActuatorDeps, requested: Requested): Promise<boolean> {
  if (requested.type === "governance.preview-requested") return true;
  const { proposalId, kind, plan } = requested.data;
  const authorizingId = authorizingProposalId(proposalId);
  const proposal = isKvKey(authorizingId) ? await deps.proposalOf(authorizingId) : null;
  const authority = authorizeAction(
    { proposalId, service: requested.service, kind, plan },
    proposal,
  );
  const log = deps.log.child({ proposal: proposalId, service: requested.service, kind });
  switch (authority.decision) {
    case "act":
      return true;
    case "skip":
      log.info({ reason: authority.reason }, "action skipped");
      return false;
    case "refuse":
      deps.refused(authority.code);
      log.warn(
        { code: authority.code, reason: authority.reason },
        "action refused; nothing pushed",
      );
      throw new TerminalError(`refused: ${authority.reason}`);
  }
}

/**
 * Executes an approved action in the environment repo and publishes its result to GOVERNANCE.
 * Ambiguity → `action-failed` with needsTriage (a revert that would re-apply harm also carries its
 * `harm` and `target`; a revert's `action-completed` names its `target`); a retryable failure
 * (network, 5xx, rate limit) is thrown so the consumer redelivers; a terminal one is published as
 * `action-failed`.
 * Only an action its proposal authorises is executed (see {@link authorized}).
 * Deliveries of one proposal run one after another in this process; across replicas the
 * deterministic commit, the no-force push and the pull request reuse keep one branch and one PR.
 */
export function onActionRequested(deps: ActuatorDeps): (requested: Requested) => Promise<void> {
  const inFlight = new Map<string, Promise<void>>();
  return async (requested) => {
    const key = requested.data.proposalId;
    const previous = inFlight.get(key) ?? Promise.resolve();
    const attempt = async () => {
      if (await authorized(deps, requested)) await execute(deps, requested);
    };
    const run = previous.then(attempt, attempt);
    const settled = run.catch(() => undefined);
    inFlight.set(key, settled);
    try {
      await run;
    } finally {
      if (inFlight.get(key) === settled) inFlight.delete(key);
    }
  };
}
