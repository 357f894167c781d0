import { activeFreezes, decideExhaustionFreeze, decideFreeze } from "@safedeploy/core";
import { CommandFailedError } from "@safedeploy/jetstream";
import { createEnvelope, messageId, parseDuration } from "@safedeploy/schema";
import type { CommandRequest, CommandResult, Envelope, FreezeView } from "@safedeploy/schema";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";
import type { FreezeRecord } from "../store.js";
import { exclusively, refreshVerdict } from "./judge.js";

type Freeze = FreezeRecord["freezes"][number];

/** A freeze opened; `time` is when it was decided (a manual one may begin later). */
function openedEvent(service: string, freeze: Freeze, time: string, cause?: Envelope): Envelope {
  return createEnvelope(
    {
      type: "governance.freeze-opened",
      id: messageId("governance.freeze-opened", freeze.id),
      service,
      data: {
        freezeId: freeze.id,
        from: freeze.from,
        until: freeze.until,
        reason: freeze.reason,
        actor: freeze.actor,
        origin: freeze.origin,
      },
    },
    {
      source: "policy",
      time,
      ...(cause === undefined ? { correlationId: freeze.id } : { causedBy: cause }),
    },
  );
}

/**
 * An exhausted budget opens a freeze of `freezeOnExhaustion` from the evaluation, unless an
 * exhaustion freeze is already in force. The freeze outlives the exhaustion: a person lifts it.
 */
export async function freezeOnExhaustion(
  deps: PolicyDeps,
  evaluation: Envelope<"budget.evaluated">,
): Promise<void> {
  const service = deps.services.get(evaluation.service);
  if (service === undefined || !evaluation.data.slos.some((s) => s.severity === "exhausted"))
    return;
  const freezeMs = parseDuration(service.policy.freezeOnExhaustion) ?? 86_400_000;
  let opened: Freeze | undefined;
  await deps.freezes.mutate(service.name, (current) => {
    const decision = decideExhaustionFreeze(
      current?.value.freezes ?? [],
      {
        service: service.name,
        evaluatedAt: evaluation.data.evaluatedAt,
        slos: evaluation.data.slos,
      },
      freezeMs,
      (freeze): Freeze => ({ ...freeze, actor: "system" }),
    );
    opened = decision.inForce;
    return decision.freezes === undefined ? undefined : { freezes: decision.freezes };
  });
  // Published whenever a freeze is in force for this evidence; the id dedups repeats.
  if (opened !== undefined) {
    await deps.publish(openedEvent(service.name, opened, opened.from, evaluation));
  }
}

/** `freeze.create`: a manual freeze window with start, end and reason. */
export const createFreeze =
  (deps: PolicyDeps) =>
  async (request: CommandRequest<"freeze.create">): Promise<FreezeView> => {
    const service = knownService(deps, request.service);
    const now = deps.now();
    const decided = decideFreeze({ ...request, now });
    if (!decided.ok) {
      throw new CommandFailedError("invalid_request", `${decided.field} ${decided.message}`, [
        { field: decided.field, message: decided.message },
      ]);
    }
    const freeze: Freeze = decided.freeze;
    await exclusively(deps, service.name, async () => {
      await deps.freezes.mutate(request.service, (current) => {
        const list = current?.value.freezes ?? [];
        return list.some((f) => f.id === freeze.id) ? undefined : { freezes: [...list, freeze] };
      });
      await deps.publish(openedEvent(request.service, freeze, now));
      await refreshVerdict(deps, service, now, (record) => record.slos, { id: freeze.id });
    });
    return { ...freeze, service: request.service };
  };

/** `freeze.lift`: ends every freeze of the service in force now (manual or automatic). */
export const liftFreezes =
  (deps: PolicyDeps) =>
  async (request: CommandRequest<"freeze.lift">): Promise<CommandResult<"freeze.lift">> =>
    exclusively(deps, knownService(deps, request.service).name, async () => {
      const service = knownService(deps, request.service);
      const now = deps.now();
      let lifted: Freeze[] = [];
      await deps.freezes.mutate(request.service, (current) => {
        const list = current?.value.freezes ?? [];
        lifted = activeFreezes(list, now);
        if (lifted.length === 0) return undefined;
        const ids = new Set(lifted.map((f) => f.id));
        return { freezes: list.map((f) => (ids.has(f.id) ? { ...f, until: now } : f)) };
      });
      for (const freeze of lifted) {
        await deps.publish(
          createEnvelope(
            {
              type: "governance.freeze-lifted",
              id: messageId("governance.freeze-lifted", freeze.id),
              service: request.service,
              data: { freezeId: freeze.id, at: now, actor: request.actor, reason: request.reason },
            },
            { source: "policy", time: now, correlationId: freeze.id },
          ),
        );
      }
      if (lifted.length > 0) {
        await refreshVerdict(deps, service, now, (record) => record.slos, {
          id: `freeze-lifted:${request.service}:${now}`,
        });
      }
      return { lifted: lifted.map((f) => ({ ...f, service: request.service })) };
    });
