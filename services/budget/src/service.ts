import { consumeEvents, publishEvent } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { Counter } from "prom-client";
import { onSnapshot } from "./handlers/snapshot.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "budget");

/** SLI snapshots in, budget evaluations out; stateless, so any number of replicas. */
export const budgetService: ServiceDefinition = {
  name: "budget",
  async start(context) {
    if (consumer === undefined) throw new Error("the topology declares no budget consumer");
    const catalog = await loadServiceCatalog(context);
    const targets = new Map(
      catalog.services.map((service) => [
        service.name,
        { rules: service.policy.burnRates, safetyMargin: service.spec.promotion.safetyMargin },
      ]),
    );
    // A service missing from this replica's catalog still gets the defaults, never silence.
    const fallback = { rules: catalog.defaultPolicy.burnRates, safetyMargin: 0.25 };
    const bus = await openServiceBus(context);
    const evaluations = new Counter({
      name: "safedeploy_budget_evaluations_total",
      help: "SLO budget evaluations published, by severity (one message holds a service's SLOs).",
      labelNames: ["severity"],
      registers: [context.registry],
    });
    const handler = onSnapshot({
      targetFor: (service) => targets.get(service) ?? fallback,
      publish: async (envelope) => {
        // Built by core from a validated snapshot; every consumer validates it on receipt.
        await publishEvent(bus, envelope, { validate: false });
        for (const slo of envelope.data.slos) evaluations.inc({ severity: slo.severity });
      },
    });
    // Stateless: many evaluations in flight hide the publish and ack round trips.
    const subscription = consumeEvents(bus, {
      consumer,
      types: ["metrics.snapshot"],
      handler,
      concurrency: 64,
      batch: 256,
      // An evaluation's id names its snapshot: a redelivery publishes nothing new.
      confirmAcks: false,
    });
    return {
      stop: async () => {
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
