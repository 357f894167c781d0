import {
  CLOCK_CAUSE_PREFIX,
  START_CAUSE_PREFIX,
  gateVerdict,
  withEvaluations,
} from "@safedeploy/core";
import type { CommandRequest, Envelope, GateView } from "@safedeploy/schema";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";
import { checkCanaryBake } from "./canary.js";
import { freezeOnExhaustion } from "./freezes.js";
import { EMPTY_RECORD, exclusively, gateInput, refreshVerdict } from "./judge.js";

/**
 * A service's budget evaluation: open an exhaustion freeze if an SLO's budget is spent, fold every
 * SLO's latest state into the service's verdict (published when it changes), then see whether a
 * canary step has baked. Stale evidence (older than what is known for an SLO) changes nothing.
 */
export const onEvaluation =
  (deps: PolicyDeps) =>
  async (evaluation: Envelope<"budget.evaluated">): Promise<void> => {
    const service = deps.services.get(evaluation.service);
    if (service === undefined) return; // not in this catalog: nothing to govern
    const { data } = evaluation;
    const verdict = await exclusively(deps, service.name, async () => {
      await freezeOnExhaustion(deps, evaluation);
      return refreshVerdict(
        deps,
        service,
        data.evaluatedAt,
        (record) => withEvaluations(record.slos, data.slos),
        { id: evaluation.id, envelope: evaluation },
      );
    });
    if (verdict !== null) await checkCanaryBake(deps, evaluation, verdict.allowed);
  };

/**
 * At start, every catalog service gets a verdict from what is known (its declaration, and the
 * evidence kept in KV), published if it changed: a service with no SLO is never evaluated, yet
 * its structural violations must be seen. Several replicas starting at once publish it once.
 */
export async function publishStartupVerdicts(deps: PolicyDeps): Promise<void> {
  const at = deps.now();
  for (const service of deps.services.values()) {
    await exclusively(deps, service.name, () =>
      refreshVerdict(deps, service, at, (record) => record.slos, {
        id: `${START_CAUSE_PREFIX}${service.name}:${at}`,
        restatement: true,
      }),
    );
  }
}

/** How many services one clock tick re-judges at once. */
const CLOCK_CONCURRENCY = 16;

/**
 * The policy service's own clock: at `at`, every service is judged again on what is known, so
 * evidence that went stale (a dead collector, budget service or Prometheus), a freeze that began
 * or ended, changes the published verdict without waiting for a message. Replicas tick at the same
 * aligned moments; the verdict id names the moment, so each change is published once.
 */
export async function judgeOnClock(deps: PolicyDeps, at: string): Promise<void> {
  const services = [...deps.services.values()];
  for (let i = 0; i < services.length; i += CLOCK_CONCURRENCY) {
    await Promise.all(
      services.slice(i, i + CLOCK_CONCURRENCY).map((service) =>
        exclusively(deps, service.name, () =>
          refreshVerdict(deps, service, at, (record) => record.slos, {
            id: `${CLOCK_CAUSE_PREFIX}${service.name}:${at}`,
          }),
        ),
      ),
    );
  }
}

/** `gate.query`: the verdict for a service now, from its latest evidence, freezes and guards. */
export const queryGate =
  (deps: PolicyDeps) =>
  async ({ service: name }: CommandRequest<"gate.query">): Promise<GateView> => {
    const service = knownService(deps, name);
    const now = deps.now();
    const record = (await deps.records.get(name))?.value ?? EMPTY_RECORD;
    const { allowed, verdict, reasons, evidenceAge } = gateVerdict(
      await gateInput(deps, service, record.slos, now),
    );
    return { service: name, evaluatedAt: now, allowed, verdict, reasons, evidenceAge };
  };
