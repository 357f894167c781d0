import { canaryReadiness, nextCanaryWeight } from "@safedeploy/core";
import type { CatalogService } from "@safedeploy/catalog";
import { CommandFailedError } from "@safedeploy/jetstream";
import { createEnvelope, messageId, parseDuration } from "@safedeploy/schema";
import type { CanaryView, CommandRequest, Envelope } from "@safedeploy/schema";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";

function canarySpec(service: CatalogService) {
  const deployment = service.spec.deployment;
  return deployment?.strategy === "canary" ? deployment.canary : undefined;
}

/**
 * `canary.step`: a pipeline, release train or person reports that the service entered a canary
 * step. The step bakes from `since`; a later report for the same step changes nothing.
 */
export const reportCanaryStep =
  (deps: PolicyDeps) =>
  async (request: CommandRequest<"canary.step">): Promise<CanaryView> => {
    const service = knownService(deps, request.service);
    const spec = canarySpec(service);
    if (spec === undefined) {
      throw new CommandFailedError(
        "invalid_request",
        `${service.name} does not declare a canary deployment strategy`,
        [{ field: "service", message: "has no canary strategy" }],
      );
    }
    const since = request.since ?? deps.now();
    let step = { weight: request.weight, since, healthyAt: null as string | null };
    await deps.canaries.mutate(service.name, (current) => {
      if (current !== null && current.value.weight === request.weight) {
        step = current.value;
        return undefined;
      }
      step = { weight: request.weight, since, healthyAt: null };
      return step;
    });
    await deps.publish(
      createEnvelope(
        {
          type: "governance.canary-step",
          id: messageId("governance.canary-step", service.name, step.weight, step.since),
          service: service.name,
          data: {
            weight: step.weight,
            since: step.since,
            actor: request.actor,
            reason: request.reason,
          },
        },
        { source: "policy", time: step.since },
      ),
    );
    return {
      service: service.name,
      weight: step.weight,
      since: step.since,
      next: nextCanaryWeight(spec.steps, step.weight),
    };
  };

/**
 * After a fresh verdict: a canary step that baked healthy for its bake time asks, once, for its
 * promotion (`governance.canary-healthy`, which the proposal service turns into a proposal).
 */
export async function checkCanaryBake(
  deps: PolicyDeps,
  evaluation: Envelope<"budget.evaluated">,
  allowed: boolean,
): Promise<void> {
  const service = deps.services.get(evaluation.service);
  const spec = service === undefined ? undefined : canarySpec(service);
  if (service === undefined || spec === undefined) return;
  const entry = await deps.canaries.get(service.name);
  if (entry === null) return;
  const bakeTimeMs = parseDuration(spec.bakeTime) ?? 0;
  const readiness = canaryReadiness({
    canary: entry.value,
    steps: spec.steps,
    bakeTimeMs,
    allowed,
    evaluatedAt: evaluation.data.evaluatedAt,
  });
  if (!readiness.ready) return;
  const { weight, since } = entry.value;
  // Publish first (deduplicated by id), then mark the step: a crash in between asks again.
  await deps.publish(
    createEnvelope(
      {
        type: "governance.canary-healthy",
        id: messageId("governance.canary-healthy", service.name, weight, since),
        service: service.name,
        data: {
          weight,
          next: readiness.next,
          since,
          bakeTime: spec.bakeTime,
          evaluatedAt: evaluation.data.evaluatedAt,
          causeId: evaluation.id,
        },
      },
      { source: "policy", time: evaluation.data.evaluatedAt, causedBy: evaluation },
    ),
  );
  await deps.canaries.mutate(service.name, (current) =>
    current?.value.since !== since || current.value.healthyAt !== null
      ? undefined
      : { ...current.value, healthyAt: evaluation.data.evaluatedAt },
  );
}
