import { createHash } from "node:crypto";
import { decideTrain, hookIdempotencyKey, releaseManifest } from "@safedeploy/core";
import type { HookName, StepState, TrainEvent, TrainState } from "@safedeploy/core";
import { KvConflictError } from "@safedeploy/jetstream";
import type { Revisioned } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, NewEvent } from "@safedeploy/schema";
import type { TrainDeps } from "./deps.js";
import { performAction } from "./effects.js";
import type { ActionResult } from "./effects.js";
import { INDEX_KEY } from "./store.js";
import type { OutboxEvent, PromotionOutcome, ProposalDecision, TrainRecord } from "./store.js";

/** The manifest event of a state: its id names the manifest's content, so repeats dedup. */
export function manifestEvent(
  state: TrainState,
  at: string,
): NewEvent<"governance.train-manifest"> {
  const manifest = releaseManifest(state);
  const digest = createHash("sha256").update(JSON.stringify(manifest)).digest("hex").slice(0, 16);
  return {
    type: "governance.train-manifest",
    id: messageId("governance.train-manifest", state.trainId, digest),
    service: state.plan.train,
    data: { trainId: state.trainId, at, manifest: { ...manifest } },
  };
}

/** Whether a train still has work: running, an effect to finish, or a follow-up to come. */
export function isActive(record: TrainRecord): boolean {
  return (
    record.state.status === "running" ||
    record.outbox.length > 0 ||
    record.pending.length > 0 ||
    // A manifest hook (a canary's rollback after a halt) whose outcome is still to come.
    record.state.steps.some((step) => (step.hooks ?? []).some((h) => h.outcome === "requested")) ||
    (!record.state.dryRun &&
      record.state.followUps.some((f) => f.phase === "scheduled" || f.phase === "running"))
  );
}

/** A manifest hook's `hook-reported`, from what the git actuator reported for it. */
function manifestHookEvent(step: number, hook: HookName, outcome: PromotionOutcome): TrainEvent {
  if (outcome.kind === "failed") {
    // A patch already in place did what the hook asks: nothing to commit is not a failure.
    return outcome.unchanged === true
      ? {
          type: "hook-reported",
          step,
          hook,
          ok: true,
          status: null,
          detail: `already in place: ${outcome.reason}`,
        }
      : { type: "hook-reported", step, hook, ok: false, status: null, detail: outcome.reason };
  }
  const { branch, commit, prUrl, diff } = outcome;
  const where = `${commit.slice(0, 12)} on ${branch}${prUrl === null ? "" : ` (${prUrl})`}`;
  return {
    type: "hook-reported",
    step,
    hook,
    ok: true,
    status: null,
    detail: outcome.dryRun
      ? `dry run: would commit ${where}; nothing pushed`
      : `committed ${where}`,
    change: { branch, commit, prUrl, diff },
  };
}

/**
 * The next decision people made on a step's promotion proposal that the step has not taken in
 * yet: a rejection first, then the approval that completed it, then any approval by someone not
 * counted yet; null when there is none.
 */
function decisionEvent(step: StepState, decisions: readonly ProposalDecision[]): TrainEvent | null {
  const rejected = decisions.find((d) => d.kind === "rejected");
  if (rejected !== undefined) {
    return {
      type: "promotion-rejected",
      step: step.index,
      by: rejected.by,
      reason: rejected.reason,
    };
  }
  const counted = new Set((step.approval?.approvals ?? []).map((a) => a.by));
  const approvals = decisions.filter(
    (d): d is Extract<ProposalDecision, { kind: "approved" }> => d.kind === "approved",
  );
  const next =
    approvals.find((d) => d.approved) ?? approvals.find((d) => !counted.has(d.by)) ?? null;
  if (next === null) return null;
  return {
    type: "promotion-approved",
    step: step.index,
    by: next.by,
    at: next.at,
    required: next.required,
    approved: next.approved,
  };
}

/**
 * What happened since the last decision, as a state-machine event with the time it happened: a
 * promotion or manifest hook reported by the actuator (a promotion's deploy time is the
 * actuator's), a person's decision on a promotion awaiting approval, a guard window or follow-up
 * whose due time passed. A dry run does not wait out its guard windows.
 */
export function dueEvent(
  record: TrainRecord,
  now: string,
): { event: TrainEvent; at: string } | null {
  const { state } = record;
  for (const step of state.steps) {
    for (const hook of step.hooks ?? []) {
      if (hook.outcome !== "requested") continue;
      const outcome = record.hookOutcomes[hookIdempotencyKey(state.trainId, step.index, hook.hook)];
      if (outcome !== undefined) {
        return { event: manifestHookEvent(step.index, hook.hook, outcome), at: now };
      }
    }
  }
  for (const step of state.steps) {
    if (step.phase === "promoting") {
      const outcome = record.promotions[String(step.index)];
      if (outcome?.kind === "completed") {
        const at = outcome.at < (step.promotingAt ?? outcome.at) ? now : outcome.at;
        return { event: { type: "step-promoted", step: step.index, commit: outcome.commit }, at };
      }
      if (outcome?.kind === "failed") {
        // Already as the step asks (a train run again): checked like a promotion, nothing to revert.
        return {
          event:
            outcome.unchanged === true
              ? { type: "step-in-place", step: step.index, reason: outcome.reason }
              : { type: "step-failed", step: step.index, reason: outcome.reason },
          at: now,
        };
      }
    }
    if (step.phase === "awaiting-approval") {
      const event = decisionEvent(step, record.decisions[String(step.index)] ?? []);
      if (event !== null) return { event, at: now };
    }
    if (
      step.phase === "deploying" &&
      step.nextProbeAt !== null &&
      step.nextProbeAt !== undefined &&
      step.nextProbeAt <= now
    ) {
      return { event: { type: "deploy-probe-due", step: step.index }, at: now };
    }
    if (step.phase === "guarding" && step.guardUntil !== null) {
      if (state.dryRun)
        return { event: { type: "guard-elapsed", step: step.index }, at: step.guardUntil };
      if (step.guardUntil <= now)
        return { event: { type: "guard-elapsed", step: step.index }, at: now };
    }
  }
  if (state.dryRun) return null;
  for (const followUp of state.followUps) {
    if (followUp.phase === "scheduled" && followUp.dueAt <= now) {
      return { event: { type: "follow-up-due", index: followUp.index }, at: now };
    }
  }
  return null;
}

/** Folds one state-machine event into the record: new state, events to publish, actions to do. */
export function applyEvent(record: TrainRecord, event: TrainEvent, at: string): TrainRecord {
  const decision = decideTrain(record.state, event, at);
  if (!decision.changed) return record;
  return {
    ...record,
    state: decision.state,
    outbox: [...record.outbox, ...decision.events, manifestEvent(decision.state, at)],
    pending: [...record.pending, ...decision.actions],
  };
}

function applyResult(record: TrainRecord, result: ActionResult, now: string): TrainRecord {
  let next: TrainRecord = { ...record, pending: record.pending.slice(1) };
  if (result.evidence !== undefined)
    next = { ...next, evidence: { ...next.evidence, ...result.evidence } };
  if (result.revert !== undefined) next = { ...next, revert: result.revert };
  if (result.guard !== undefined) {
    next = { ...next, guards: { ...next.guards, [result.guard.service]: result.guard.guardId } };
  }
  if (result.event !== undefined) next = applyEvent(next, result.event, now);
  return next;
}

function envelopeOf(record: TrainRecord, event: OutboxEvent): Envelope {
  return createEnvelope(event as NewEvent<"governance.train-step">, {
    source: "release-train",
    time: record.updatedAt,
    correlationId: record.id,
  });
}

/** The outcome of one {@link advanceTrain}: done for now, or another replica holds the train. */
export type AdvanceOutcome = "idle" | "held" | "missing";

/**
 * Advances one train as far as it can go now, one durable step at a time: claim it (a lease
 * written with compare-and-set, so one replica at a time), then publish its outbox, do its next
 * pending action, or feed the state machine what is due — saving with compare-and-set after each.
 * The lease is short and renewed every third of it while the pass runs (checks can take longer
 * than a lease), so a replica that dies holds a train up for one lease at most; it leaves the
 * record at its last save and the next one resumes there, redoing at most one idempotent effect.
 */
export async function advanceTrain(deps: TrainDeps, trainId: string): Promise<AdvanceOutcome> {
  const leaseUntil = () => new Date(Date.parse(deps.now()) + deps.leaseMs).toISOString();
  const claimed = await deps.trains.mutate(trainId, (current) => {
    if (current === null) return undefined;
    const lease = current.value.lease;
    if (lease !== null && lease.owner !== deps.owner && lease.until > deps.now()) return undefined;
    return { ...current.value, lease: { owner: deps.owner, until: leaseUntil() } };
  });
  if (claimed.entry === null) return "missing";
  if (!claimed.changed) return "held";
  let entry: Revisioned<TrainRecord> = claimed.entry;

  // The pass's saves and the lease renewals write one after another, each on the last revision.
  let writes: Promise<unknown> = Promise.resolve();
  const write = (value: () => TrainRecord): Promise<void> => {
    const next = writes.then(async () => {
      const written = value();
      entry = {
        value: written,
        revision: await deps.trains.update(trainId, written, entry.revision),
      };
    });
    writes = next.catch(() => undefined);
    return next;
  };
  const save = (value: TrainRecord): Promise<void> => write(() => value);
  const renewal = setInterval(() => {
    write(() => ({ ...entry.value, lease: { owner: deps.owner, until: leaseUntil() } })).catch(
      () => undefined, // lost to another replica: the pass's next save says so
    );
  }, deps.leaseMs / 3);
  renewal.unref();
  const log = deps.log.child({ train: trainId });
  try {
    for (let round = 0; round < 1_000; round += 1) {
      const record = entry.value;
      const now = deps.now();
      const lease = { owner: deps.owner, until: leaseUntil() };
      if (record.outbox.length > 0) {
        for (const event of record.outbox) await deps.publish(envelopeOf(record, event));
        await save({ ...record, outbox: [], lease, updatedAt: now });
        continue;
      }
      const action = record.pending[0];
      if (action !== undefined) {
        log.debug({ action: action.kind }, "performing");
        const result = await performAction(deps, record, action);
        await save({ ...applyResult(record, result, now), lease, updatedAt: now });
        continue;
      }
      const due = dueEvent(record, now);
      if (due !== null) {
        const next = applyEvent(record, due.event, due.at);
        if (next === record) {
          log.warn({ event: due.event }, "the state machine ignored a due event");
          break;
        }
        await save({ ...next, lease, updatedAt: now });
        continue;
      }
      break;
    }
  } catch (error) {
    if (error instanceof KvConflictError) {
      log.warn({}, "the train moved under this replica; leaving it");
      return "held";
    }
    log.warn({ err: error }, "release train step failed; retrying on a later tick");
  } finally {
    clearInterval(renewal);
    await writes;
  }
  await deps.trains
    .update(trainId, { ...entry.value, lease: null }, entry.revision)
    .catch(() => undefined);
  if (!isActive(entry.value)) {
    await deps.index.mutate(INDEX_KEY, (current) => {
      const trains = current?.value.trains ?? [];
      if (!trains.some((t) => t.id === trainId && t.active)) return undefined;
      return { trains: trains.map((t) => (t.id === trainId ? { ...t, active: false } : t)) };
    });
  }
  return "idle";
}

/** The trains some replica must advance. */
export async function activeTrains(deps: TrainDeps): Promise<string[]> {
  const index = await deps.index.get(INDEX_KEY);
  return (index?.value.trains ?? []).filter((t) => t.active).map((t) => t.id);
}
