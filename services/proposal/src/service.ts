import { consumeEvents, openKv, publishEvent, serveCommand } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { approve, onIncidentOpened, reject } from "./proposals.js";
import type { ProposalDeps } from "./proposals.js";
import { ProposalRecord } from "./store.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "proposal");

/** Turns opened incidents into inert rollback proposals; approves and rejects them on command. */
export const proposalService: ServiceDefinition = {
  name: "proposal",
  async start(context) {
    if (consumer === undefined) throw new Error("the topology declares no proposal consumer");
    const catalog = await loadServiceCatalog(context);
    const services = new Map(catalog.services.map((s) => [s.name, s]));
    const bus = await openServiceBus(context);
    const deps: ProposalDeps = {
      proposals: await openKv(bus, "proposals", ProposalRecord),
      publish: (envelope) => publishEvent(bus, envelope),
      now: () => new Date().toISOString(),
      serviceFor: (name) => {
        const service = services.get(name);
        return service === undefined
          ? undefined
          : {
              rollbackPath: service.spec.rollback?.path ?? null,
              approvalsRequired: service.policy.approvals.required,
            };
      },
    };
    const opened = onIncidentOpened(deps);
    const subscription = consumeEvents(bus, {
      consumer,
      handler: async (envelope) => {
        if (envelope.type === "incidents.opened") await opened(envelope);
      },
    });
    const approving = await serveCommand(bus, "proposal.approve", (request) =>
      approve(deps, request),
    );
    const rejecting = await serveCommand(bus, "proposal.reject", (request) =>
      reject(deps, request),
    );
    return {
      stop: async () => {
        await Promise.all([approving.stop(), rejecting.stop()]);
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
