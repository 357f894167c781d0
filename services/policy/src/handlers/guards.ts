import { activeGuards, guardId } from "@safedeploy/core";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { CommandRequest, CommandResult, Envelope, GuardView } from "@safedeploy/schema";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";
import type { GuardRecord } from "../store.js";
import { exclusively, refreshVerdict } from "./judge.js";

type Guard = GuardRecord["guards"][number];

/** What a failed guard says, in its view and in its `governance.guard-failed` event alike. */
const failure = (guard: Guard) => ({
  train: guard.train,
  trainId: guard.trainId,
  step: guard.step,
  reason: guard.reason,
  evidence: guard.evidence,
  at: guard.at,
});

const toView = (service: string, guard: Guard): GuardView => ({
  id: guard.id,
  service,
  ...failure(guard),
  clearedAt: guard.clearedAt,
  clearedBy: guard.clearedBy,
});

function clearedEvent(
  service: string,
  guard: Guard,
  by: "revert" | "person",
  context: { readonly causedBy?: Envelope },
): Envelope {
  const at = guard.clearedAt ?? guard.at;
  return createEnvelope(
    {
      type: "governance.guard-cleared",
      id: messageId("governance.guard-cleared", guard.id),
      service,
      data: {
        guardId: guard.id,
        at,
        actor: guard.clearedBy ?? "system",
        reason: guard.clearReason ?? "",
        by,
      },
    },
    {
      source: "policy",
      time: at,
      ...(context.causedBy === undefined
        ? { correlationId: guard.trainId }
        : { causedBy: context.causedBy }),
    },
  );
}

/**
 * `guard.fail`: a release train's guard failed for a service. The service's gate blocks
 * (`release-guard-failed`) from now until its revert is executed or an approver clears it. Asking
 * again for the same train and step finds the guard already there and changes nothing.
 */
export const failGuard =
  (deps: PolicyDeps) =>
  async (request: CommandRequest<"guard.fail">): Promise<GuardView> =>
    exclusively(deps, knownService(deps, request.service).name, async () => {
      const service = knownService(deps, request.service);
      const now = deps.now();
      const id = guardId(request.service, request.trainId, request.step);
      let guard: Guard = {
        id,
        train: request.train,
        trainId: request.trainId,
        step: request.step,
        reason: request.reason,
        evidence: request.evidence,
        at: now,
        clearedAt: null,
        clearedBy: null,
        clearReason: null,
      };
      await deps.guards.mutate(request.service, (current) => {
        const list = current?.value.guards ?? [];
        const known = list.find((g) => g.id === id);
        if (known !== undefined) {
          guard = known;
          return undefined;
        }
        return { guards: [...list, guard] };
      });
      await deps.publish(
        createEnvelope(
          {
            type: "governance.guard-failed",
            id: messageId("governance.guard-failed", guard.id),
            service: request.service,
            data: { guardId: guard.id, ...failure(guard) },
          },
          { source: "policy", time: guard.at, correlationId: guard.trainId },
        ),
      );
      await refreshVerdict(deps, service, guard.at, (record) => record.slos, { id: guard.id });
      return toView(request.service, guard);
    });

/**
 * Clears every guard of a service still in force at `at`, as `actor`, and publishes each
 * clearance; the verdict is judged again. Resolves the guards cleared (none: nothing changed).
 */
async function clearGuards(
  deps: PolicyDeps,
  serviceName: string,
  clearance: {
    readonly at: string;
    readonly actor: string;
    readonly reason: string;
    readonly by: "revert" | "person";
  },
  causedBy?: Envelope,
): Promise<Guard[]> {
  const service = knownService(deps, serviceName);
  return exclusively(deps, service.name, async () => {
    let cleared: Guard[] = [];
    await deps.guards.mutate(serviceName, (current) => {
      const list = current?.value.guards ?? [];
      const ids = new Set(activeGuards(list, clearance.at).map((g) => g.id));
      cleared = [];
      if (ids.size === 0) return undefined;
      const guards = list.map((g) => {
        if (!ids.has(g.id)) return g;
        const done = {
          ...g,
          clearedAt: clearance.at,
          clearedBy: clearance.actor,
          clearReason: clearance.reason,
        };
        cleared.push(done);
        return done;
      });
      return { guards };
    });
    for (const guard of cleared) {
      await deps.publish(
        clearedEvent(serviceName, guard, clearance.by, causedBy === undefined ? {} : { causedBy }),
      );
    }
    if (cleared.length > 0) {
      await refreshVerdict(deps, service, clearance.at, (record) => record.slos, {
        id: `guard-cleared:${serviceName}:${clearance.at}`,
        ...(causedBy === undefined ? {} : { envelope: causedBy }),
      });
    }
    return cleared;
  });
}

/** `guard.clear`: an approver, after triage, clears every failed guard of a service. */
export const clearGuardsCommand =
  (deps: PolicyDeps) =>
  async (request: CommandRequest<"guard.clear">): Promise<CommandResult<"guard.clear">> => {
    const cleared = await clearGuards(deps, request.service, {
      at: deps.now(),
      actor: request.actor,
      reason: request.reason,
      by: "person",
    });
    return { cleared: cleared.map((g) => toView(request.service, g)) };
  };

/**
 * An executed rollback of a service clears the guards it failed: the change that failed them is
 * undone. Dry runs and other kinds change nothing.
 */
export const onActionCompleted =
  (deps: PolicyDeps) =>
  async (completed: Envelope<"governance.action-completed">): Promise<void> => {
    const { data } = completed;
    if (data.dryRun || data.kind !== "rollback-rollout") return;
    if (!deps.services.has(completed.service)) return;
    await clearGuards(
      deps,
      completed.service,
      {
        at: data.at,
        actor: "system",
        reason: `revert ${data.proposalId} executed${data.commit === "" ? "" : ` (${data.commit.slice(0, 12)})`}`,
        by: "revert",
      },
      completed,
    );
  };
