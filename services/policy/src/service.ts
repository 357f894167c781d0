import { activeFreezes, exhaustionFreeze, gateVerdict } from "@safedeploy/core";
import type { GateInput } from "@safedeploy/core";
import type { CatalogService } from "@safedeploy/catalog";
import {
  CommandFailedError,
  consumeEvents,
  openKv,
  publishEvent,
  serveCommand,
} from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY, createEnvelope, messageId, parseDuration } from "@safedeploy/schema";
import type { Envelope, FreezeView, GateView } from "@safedeploy/schema";
import { FreezeRecord, PolicyRecord } from "./store.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "policy");

function gateInput(
  service: CatalogService,
  record: PolicyRecord | null,
  freezes: FreezeRecord | null,
  now: string,
): GateInput {
  const deployment = service.spec.deployment;
  return {
    service: {
      sloNames: service.spec.slos.map((slo) => slo.name),
      rollbackPath: service.spec.rollback?.path ?? null,
      strategy: deployment?.strategy ?? null,
      safetyMargin: service.spec.promotion.safetyMargin,
    },
    policy: {
      requireCanary: service.policy.requireCanary,
      maxPromotionBurnRate: service.policy.maxPromotionBurnRate,
      noData: service.policy.noData,
      promotionBurnWindow: service.policy.burnRates[0]?.long ?? "1h",
    },
    slos: Object.values(record?.slos ?? {}),
    freezes: freezes?.freezes ?? [],
    now,
  };
}

const sameVerdict = (a: PolicyRecord["verdict"], b: PolicyRecord["verdict"]) =>
  JSON.stringify(a?.reasons.map((r) => r.code)) === JSON.stringify(b?.reasons.map((r) => r.code)) &&
  a?.allowed === b?.allowed;

/**
 * Runtime and structural policy: keeps the latest evaluation per SLO, opens a freeze when a budget
 * is exhausted, publishes a service's verdict when it changes, and answers `gate.query`,
 * `freeze.create` and `freeze.lift`. Freezes live in KV, so they outlive restarts.
 */
export const policyService: ServiceDefinition = {
  name: "policy",
  async start(context) {
    if (consumer === undefined) throw new Error("the topology declares no policy consumer");
    const catalog = await loadServiceCatalog(context);
    const services = new Map(catalog.services.map((s) => [s.name, s]));
    const bus = await openServiceBus(context);
    const records: TypedKv<PolicyRecord> = await openKv(bus, "verdicts", PolicyRecord);
    const freezes: TypedKv<FreezeRecord> = await openKv(bus, "freezes", FreezeRecord);
    const known = (name: string) => {
      const service = services.get(name);
      if (service === undefined)
        throw new CommandFailedError("not_found", `no service named ${name}`);
      return service;
    };

    const handler = async (evaluation: Envelope<"budget.evaluated">) => {
      const service = services.get(evaluation.service);
      if (service === undefined) return; // not in this catalog: nothing to govern
      const { data } = evaluation;
      if (data.severity === "exhausted") {
        const freezeMs = parseDuration(service.policy.freezeOnExhaustion) ?? 86_400_000;
        const freeze = {
          ...exhaustionFreeze(service.name, data.evaluatedAt, freezeMs),
          actor: "system",
        };
        await freezes.mutate(service.name, (current) => {
          const list = current?.value.freezes ?? [];
          // One exhaustion freeze at a time: a new one only once the last has ended.
          if (activeFreezes(list, data.evaluatedAt).some((f) => f.origin === "exhaustion"))
            return undefined;
          return { freezes: [...list, freeze] };
        });
      }
      const frozen = (await freezes.get(service.name))?.value ?? null;
      // Set inside the compare-and-set callback (which may run more than once): the last run wins.
      const outcome: { previous: PolicyRecord["verdict"]; next: PolicyRecord["verdict"] } = {
        previous: null,
        next: null,
      };
      await records.mutate(service.name, (current) => {
        const record = current?.value ?? { slos: {}, verdict: null };
        const known = record.slos[data.slo];
        if (known !== undefined && known.evaluatedAt >= data.evaluatedAt) return undefined; // stale
        const slos = {
          ...record.slos,
          [data.slo]: {
            slo: data.slo,
            severity: data.severity,
            budgetRemaining: data.budgetRemaining,
            burnRates: data.burnRates.map((b) => ({ window: b.window, burnRate: b.burnRate })),
            evaluatedAt: data.evaluatedAt,
          },
        };
        const verdict = gateVerdict(
          gateInput(service, { slos, verdict: null }, frozen, data.evaluatedAt),
        );
        outcome.previous = record.verdict;
        outcome.next = verdict;
        return { slos, verdict };
      });
      const verdict = outcome.next;
      if (verdict === null || sameVerdict(verdict, outcome.previous)) return;
      await publishEvent(
        bus,
        createEnvelope(
          {
            type: "governance.verdict",
            id: messageId("governance.verdict", service.name, data.evaluatedAt),
            service: service.name,
            data: { ...verdict, evaluatedAt: data.evaluatedAt, causeId: evaluation.id },
          },
          { source: "policy", time: data.evaluatedAt, causedBy: evaluation },
        ),
      );
    };

    const subscription = consumeEvents(bus, {
      consumer,
      types: ["budget.evaluated"],
      handler,
      concurrency: 16,
    });
    const gate = await serveCommand(
      bus,
      "gate.query",
      async ({ service: name }): Promise<GateView> => {
        const service = known(name);
        const now = new Date().toISOString();
        const record = (await records.get(name))?.value ?? null;
        const frozen = (await freezes.get(name))?.value ?? null;
        return {
          service: name,
          evaluatedAt: now,
          ...gateVerdict(gateInput(service, record, frozen, now)),
        };
      },
    );
    const createFreeze = await serveCommand(
      bus,
      "freeze.create",
      async (request): Promise<FreezeView> => {
        known(request.service);
        const from = request.from ?? new Date().toISOString();
        if (Date.parse(request.until) <= Date.parse(from)) {
          throw new CommandFailedError("invalid_request", "until must be after from");
        }
        const freeze = {
          id: `freeze:${request.service}:manual:${from}`,
          from,
          until: request.until,
          reason: request.reason,
          origin: "manual" as const,
          actor: request.actor,
        };
        await freezes.mutate(request.service, (current) => {
          const list = current?.value.freezes ?? [];
          return list.some((f) => f.id === freeze.id) ? undefined : { freezes: [...list, freeze] };
        });
        return { ...freeze, service: request.service };
      },
    );
    const liftFreeze = await serveCommand(bus, "freeze.lift", async (request) => {
      known(request.service);
      const now = new Date().toISOString();
      let lifted: FreezeRecord["freezes"] = [];
      await freezes.mutate(request.service, (current) => {
        const list = current?.value.freezes ?? [];
        lifted = activeFreezes(list, now);
        if (lifted.length === 0) return undefined;
        const ids = new Set(lifted.map((f) => f.id));
        return { freezes: list.map((f) => (ids.has(f.id) ? { ...f, until: now } : f)) };
      });
      return { lifted: lifted.map((f) => ({ ...f, service: request.service })) };
    });
    return {
      stop: async () => {
        await Promise.all([gate.stop(), createFreeze.stop(), liftFreeze.stop()]);
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
