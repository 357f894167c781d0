import { decideVerdict, gateDeclaration, gateVerdict } from "@safedeploy/core";
import type { GateInput, GateVerdict } from "@safedeploy/core";
import type { CatalogService } from "@safedeploy/catalog";
import { createEnvelope, messageId, staleAfterMs } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { mutate, oneAtATime } from "@safedeploy/jetstream";
import type { PolicyDeps } from "../deps.js";
import type { PolicyRecord } from "../store.js";
import { recurringFreezes } from "./freeze-windows.js";

export const EMPTY_RECORD: PolicyRecord = { slos: {}, verdict: null };

/**
 * Runs `run` for `service` after every other run for it in this process has finished. A verdict
 * reads the service's freezes and guards before its compare-and-set on the record, so a freeze
 * written in between (an evaluation opening one while the clock judges) would be missing from a
 * verdict published for a later moment, and the freeze's own verdict, judged earlier, would not
 * be published at all. Every writer of a service's freezes and guards, and every verdict, runs
 * through here. Replicas still race each other; the next tick or evidence corrects that.
 */
export function exclusively<T>(
  deps: PolicyDeps,
  service: string,
  run: () => Promise<T>,
): Promise<T> {
  return oneAtATime(deps, service, run);
}

/** Everything the gate of a service judges at `now`, read from this service's KV. */
export async function gateInput(
  deps: PolicyDeps,
  service: CatalogService,
  slos: PolicyRecord["slos"],
  now: string,
): Promise<GateInput> {
  const [freezes, guards, recurring] = await Promise.all([
    deps.freezes.get(service.name),
    deps.guards.get(service.name),
    recurringFreezes(deps.freezeWindows, service, now),
  ]);
  return {
    ...gateDeclaration(
      service.spec,
      service.policy,
      staleAfterMs(service.policy, deps.pollIntervalMs),
    ),
    slos: Object.values(slos),
    freezes: [...(freezes?.value.freezes ?? []), ...recurring],
    guards: guards?.value.guards ?? [],
    now,
  };
}

/** Two verdicts are the same when they say the same and give the same reason codes. */
const recorded = (verdict: GateVerdict): NonNullable<PolicyRecord["verdict"]> => ({
  allowed: verdict.allowed,
  verdict: verdict.verdict,
  reasons: verdict.reasons,
});

/**
 * Recomputes a service's verdict at `at` by compare-and-set on its record and publishes it when it
 * changed. `fold` adds new evidence to the record's SLO states (the same object when there is
 * none), or returns undefined when the evidence is stale. Resolves the fresh verdict, or null when
 * the evidence was stale.
 */
export async function refreshVerdict(
  deps: PolicyDeps,
  service: CatalogService,
  at: string,
  fold: (record: PolicyRecord) => PolicyRecord["slos"] | undefined,
  cause: {
    readonly id: string;
    readonly envelope?: Envelope;
    /**
     * A restatement at start: it neither waits for nor moves the moment later verdicts must not
     * go back before (evidence of the current interval is older than the start).
     */
    readonly restatement?: boolean;
  },
): Promise<GateVerdict | null> {
  // Everything but the SLO states, which the decision below reads from the record it writes.
  const input = await gateInput(deps, service, {}, at);
  const { result } = await mutate<PolicyRecord, { verdict: GateVerdict; publish: boolean } | null>(
    deps.records,
    service.name,
    (current) => {
      const record = current?.value ?? EMPTY_RECORD;
      const slos = fold(record);
      if (slos === undefined) return { next: undefined, result: null };
      const verdict = gateVerdict({ ...input, slos: Object.values(slos) });
      const { publish, verdictAt } = decideVerdict({
        previous: record.verdict,
        previousAt: record.verdictAt,
        next: recorded(verdict),
        at,
        restatement: cause.restatement === true,
      });
      const result = { verdict, publish };
      // Nothing new and nothing to publish (a clock tick that changed nothing): no write at all.
      if (current !== null && slos === record.slos && !publish) return { next: undefined, result };
      if (!publish) return { next: { ...record, slos }, result };
      return {
        next: {
          slos,
          verdict: recorded(verdict),
          ...(verdictAt === undefined ? {} : { verdictAt }),
        },
        result,
      };
    },
  );
  if (result === null) return null;
  const { verdict, publish } = result;
  if (!publish) return verdict;
  await publishVerdict(deps, service.name, verdict, at, cause);
  return verdict;
}

/** A changed verdict, caused by its evidence (or named by its cause id), at the moment judged. */
async function publishVerdict(
  deps: PolicyDeps,
  service: string,
  verdict: GateVerdict,
  at: string,
  cause: { readonly id: string; readonly envelope?: Envelope },
): Promise<void> {
  await deps.publish(
    createEnvelope(
      {
        type: "governance.verdict",
        // The cause too: a clock tick and an evaluation judged at the same moment are two
        // verdicts (one id would drop the second), while replicas judging one cause agree.
        id: messageId("governance.verdict", service, at, cause.id),
        service: service,
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
}
