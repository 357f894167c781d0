import { consumeEvents, openKv, publishEvent, serveCommand } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import type { PolicyDeps } from "./deps.js";
import { reportCanaryStep } from "./handlers/canary.js";
import { createFreeze, liftFreezes } from "./handlers/freezes.js";
import { onEvaluation, publishStartupVerdicts, queryGate } from "./handlers/verdicts.js";
import { CanaryRecord, FreezeRecord, PolicyRecord } from "./store.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "policy");

/**
 * Runtime and structural policy: keeps the latest evaluation per SLO, opens a freeze when a budget
 * is exhausted, publishes a service's verdict when it changes, notices baked canary steps, and
 * answers `gate.query`, `freeze.create`, `freeze.lift` and `canary.step`. State lives in KV, so
 * freezes and canary steps outlive restarts.
 */
export const policyService: ServiceDefinition = {
  name: "policy",
  async start(context) {
    if (consumer === undefined) throw new Error("the topology declares no policy consumer");
    const catalog = await loadServiceCatalog(context);
    const bus = await openServiceBus(context);
    const deps: PolicyDeps = {
      services: new Map(catalog.services.map((s) => [s.name, s])),
      records: await openKv(bus, "verdicts", PolicyRecord),
      freezes: await openKv(bus, "freezes", FreezeRecord),
      canaries: await openKv(bus, "canaries", CanaryRecord),
      publish: (envelope) => publishEvent(bus, envelope),
      now: () => new Date().toISOString(),
    };
    await publishStartupVerdicts(deps);
    const subscription = consumeEvents(bus, {
      consumer,
      types: ["budget.evaluated"],
      handler: onEvaluation(deps),
      concurrency: 16,
    });
    const commands = [
      await serveCommand(bus, "gate.query", queryGate(deps)),
      await serveCommand(bus, "freeze.create", createFreeze(deps)),
      await serveCommand(bus, "freeze.lift", liftFreezes(deps)),
      await serveCommand(bus, "canary.step", reportCanaryStep(deps)),
    ];
    return {
      stop: async () => {
        await Promise.all(commands.map((command) => command.stop()));
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
