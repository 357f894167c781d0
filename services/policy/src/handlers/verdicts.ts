import { gateDeclaration, gateVerdict, withEvaluation } from "@safedeploy/core";
import type { GateInput, GateVerdict } from "@safedeploy/core";
import type { CatalogService } from "@safedeploy/catalog";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { CommandRequest, Envelope, GateView } from "@safedeploy/schema";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";
import type { FreezeRecord, PolicyRecord } from "../store.js";
import { checkCanaryBake } from "./canary.js";
import { freezeOnExhaustion } from "./freezes.js";

function gateInput(
  service: CatalogService,
  record: PolicyRecord | null,
  freezes: FreezeRecord | null,
  now: string,
): GateInput {
  return {
    ...gateDeclaration(service.spec, service.policy),
    slos: Object.values(record?.slos ?? {}),
    freezes: freezes?.freezes ?? [],
    now,
  };
}

const sameVerdict = (a: PolicyRecord["verdict"], b: PolicyRecord["verdict"]) =>
  JSON.stringify(a?.reasons.map((r) => r.code)) === JSON.stringify(b?.reasons.map((r) => r.code)) &&
  a?.allowed === b?.allowed;

/**
 * Recomputes a service's verdict by compare-and-set on its record and publishes it when it
 * changed. `fold` adds the new evidence to the record, or returns undefined when it is stale.
 * Resolves the fresh verdict, or null when the evidence was stale.
 */
async function refreshVerdict(
  deps: PolicyDeps,
  service: CatalogService,
  at: string,
  fold: (record: PolicyRecord) => PolicyRecord["slos"] | undefined,
  cause: { readonly id: string; readonly envelope?: Envelope },
): Promise<GateVerdict | null> {
  const frozen = (await deps.freezes.get(service.name))?.value ?? null;
  // Set inside the compare-and-set callback (which may run more than once): the last run wins.
  const outcome: { previous: PolicyRecord["verdict"]; next: GateVerdict | null } = {
    previous: null,
    next: null,
  };
  await deps.records.mutate(service.name, (current) => {
    const record = current?.value ?? { slos: {}, verdict: null };
    const slos = fold(record);
    outcome.next = null;
    if (slos === undefined) return undefined;
    const verdict = gateVerdict(gateInput(service, { slos, verdict: null }, frozen, at));
    outcome.previous = record.verdict;
    outcome.next = verdict;
    return { slos, verdict };
  });
  const verdict = outcome.next;
  if (verdict === null || sameVerdict(verdict, outcome.previous)) return verdict;
  await deps.publish(
    createEnvelope(
      {
        type: "governance.verdict",
        id: messageId("governance.verdict", service.name, at),
        service: service.name,
        data: { ...verdict, evaluatedAt: at, causeId: cause.id },
      },
      {
        source: "policy",
        time: at,
        ...(cause.envelope === undefined
          ? { correlationId: cause.id }
          : { causedBy: cause.envelope }),
      },
    ),
  );
  return verdict;
}

/**
 * A budget evaluation: open an exhaustion freeze if the budget is spent, fold the SLO's latest
 * state into the service's verdict (published when it changes), then see whether a canary step
 * has baked. Stale evidence (older than what is known for the SLO) changes nothing.
 */
export const onEvaluation =
  (deps: PolicyDeps) =>
  async (evaluation: Envelope<"budget.evaluated">): Promise<void> => {
    const service = deps.services.get(evaluation.service);
    if (service === undefined) return; // not in this catalog: nothing to govern
    await freezeOnExhaustion(deps, evaluation);
    const { data } = evaluation;
    const verdict = await refreshVerdict(
      deps,
      service,
      data.evaluatedAt,
      (record) => withEvaluation(record.slos, data),
      { id: evaluation.id, envelope: evaluation },
    );
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
    await refreshVerdict(deps, service, at, (record) => record.slos, {
      id: `policy.start:${service.name}:${at}`,
    });
  }
}

/** `gate.query`: the verdict for a service now, from its latest evidence and freezes. */
export const queryGate =
  (deps: PolicyDeps) =>
  async ({ service: name }: CommandRequest<"gate.query">): Promise<GateView> => {
    const service = knownService(deps, name);
    const now = deps.now();
    const record = (await deps.records.get(name))?.value ?? null;
    const frozen = (await deps.freezes.get(name))?.value ?? null;
    return {
      service: name,
      evaluatedAt: now,
      ...gateVerdict(gateInput(service, record, frozen, now)),
    };
  };
