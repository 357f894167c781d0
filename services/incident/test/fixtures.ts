import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { Envelope, Severity } from "@safedeploy/schema";
import { createTestBus, testServiceEnv } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { incidentService } from "../src/service.js";

const catalog = new URL("../../../test/fixtures/catalog/valid", import.meta.url).pathname;

/** A fresh namespace with `count` incident replicas on the valid fixture catalog. */
export async function startIncidents(
  count = 1,
): Promise<{ harness: TestBus; replicas: ServiceHandle[] }> {
  const harness = await createTestBus();
  await provision(harness.bus);
  const env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog });
  const replicas: ServiceHandle[] = [];
  for (let i = 0; i < count; i++) replicas.push(await startService(incidentService, { env }));
  return { harness, replicas };
}

/** A budget evaluation of one SLO at `at`, as the budget service would publish it. */
export function budgetEvaluation(
  service: string,
  at: string,
  severity: Severity,
  options: { slo?: string; objective?: number } = {},
): Envelope<"budget.evaluated"> {
  const slo = options.slo ?? "availability";
  return createEnvelope(
    {
      type: "budget.evaluated",
      id: messageId("budget.evaluated", service, slo, at),
      service,
      data: {
        slo,
        snapshotId: `snap:${service}:${slo}:${at}`,
        evaluatedAt: at,
        objective: options.objective ?? 99.9,
        severity,
        budgetRemaining: severity === "exhausted" ? -0.1 : 0.5,
        errorRatio: 0.01,
        burnRates: [],
        rules: [],
        explanation: severity,
        windows: [],
      },
    },
    { source: "budget", time: at },
  );
}
