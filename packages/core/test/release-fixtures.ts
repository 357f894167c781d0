import { planTrain } from "@safedeploy/core";
import type { TrainPlan } from "@safedeploy/core";
import { ServiceDocument } from "@safedeploy/schema";
import type { ReleaseTrainDocument } from "@safedeploy/schema";

/** A catalog service owned by `team`, rolled back by reverting `envs/prod/<name>`. */
export const serviceDocument = (name: string, spec: Record<string, unknown> = {}) =>
  ServiceDocument.parse({
    apiVersion: "safedeploy.dev/v1",
    kind: "Service",
    metadata: { name, owner: "team" },
    spec: { slos: [], rollback: { strategy: "git-revert", path: `envs/prod/${name}` }, ...spec },
  });

/** The plan of a train the test expects to be valid (its errors thrown otherwise). */
export function validPlan(
  doc: ReleaseTrainDocument,
  services: readonly ServiceDocument[],
): TrainPlan {
  const result = planTrain(doc, services);
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
  return result.plan;
}
