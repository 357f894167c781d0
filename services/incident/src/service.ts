import { consumeEvents, openKv, publishEvent, serveCommand } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY, parseDuration } from "@safedeploy/schema";
import { onActionCompleted } from "./handlers/action.js";
import { onEvaluation } from "./handlers/evaluation.js";
import { onTransitionCommand } from "./handlers/transition.js";
import { onVerdict } from "./handlers/verdict.js";
import { INDEX_KEY_PREFIX } from "./record.js";
import { IncidentIndex, ServiceRecord } from "./store.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "incident");
const actions = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "incident-actions");
const verdicts = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "incident-verdicts");

/**
 * Budget evaluations and promotion verdicts in, one incident state machine per service out (SLO
 * and policy incidents). Any number of replicas.
 */
export const incidentService: ServiceDefinition = {
  name: "incident",
  async start(context) {
    if (consumer === undefined || actions === undefined || verdicts === undefined) {
      throw new Error(
        "the topology declares no incident, incident-actions or incident-verdicts consumer",
      );
    }
    const catalog = await loadServiceCatalog(context);
    const policies = new Map(catalog.services.map((s) => [s.name, s.policy]));
    const sloNames = new Map(catalog.services.map((s) => [s.name, s.spec.slos.map((o) => o.name)]));
    const bus = await openServiceBus(context);
    // Read on every evaluation: served from an exact local mirror (the index keys are not in it).
    const records = await openKv(bus, "incidents-active", ServiceRecord, {
      mirror: { keys: (key) => !key.startsWith(INDEX_KEY_PREFIX) },
    });
    const index = await openKv(bus, "incidents-active", IncidentIndex);
    const publish = (envelope: Parameters<typeof publishEvent>[1]) => publishEvent(bus, envelope);
    const transitions = await serveCommand(
      bus,
      "incident.transition",
      onTransitionCommand({ records, index, publish, now: () => new Date().toISOString() }),
    );
    const handler = onEvaluation({
      records,
      index,
      publish,
      policyFor: (service) => {
        const policy = policies.get(service) ?? catalog.defaultPolicy;
        return {
          openIncidentOn: policy.openIncidentOn,
          resolveAfterMs: parseDuration(policy.resolveAfter) ?? 15 * 60_000,
          sloNames: sloNames.get(service) ?? [],
        };
      },
    });
    const subscription = consumeEvents(bus, {
      consumer,
      types: ["budget.evaluated"],
      handler,
      concurrency: 16,
      // Compare-and-set on the record and event ids make a redelivery harmless.
      confirmAcks: false,
    });
    const mitigations = consumeEvents(bus, {
      consumer: actions,
      types: ["governance.action-completed"],
      handler: onActionCompleted({ records, index, publish }),
    });
    const policyIncidents = consumeEvents(bus, {
      consumer: verdicts,
      types: ["governance.verdict"],
      handler: onVerdict({ records, index, publish }),
    });
    return {
      stop: async () => {
        await transitions.stop();
        await policyIncidents.stop();
        await mitigations.stop();
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
