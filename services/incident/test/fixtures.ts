import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { budgetEvaluationEvent, createTestBus, testServiceEnv } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { incidentService } from "../src/service.js";

const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;

/** A fresh namespace with `count` incident replicas on the valid fixture catalog. */
export async function startIncidents(
  count = 1,
  catalogPath = catalog,
): Promise<{ harness: TestBus; replicas: ServiceHandle[] }> {
  const harness = await createTestBus();
  await provision(harness.bus);
  const env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalogPath });
  const replicas: ServiceHandle[] = [];
  for (let i = 0; i < count; i++) replicas.push(await startService(incidentService, { env }));
  return { harness, replicas };
}

/** A budget evaluation of one SLO at `at`, as the budget service would publish it. */
export const budgetEvaluation = budgetEvaluationEvent;
