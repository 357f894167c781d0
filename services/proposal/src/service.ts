import { consumeEvents, openKv, publishEvent, serveCommand } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { liveRevisionAt } from "@safedeploy/core";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { DeployHistory, SeenDeploy, listDeploys, recordDeploy } from "./deploys.js";
import { onActionOutcome, onCanaryHealthy, onVerdict } from "./governance.js";
import {
  approve,
  onIncidentEscalated,
  onIncidentOpened,
  reject,
  requestPromotion,
  requestRevert,
} from "./proposals.js";
import type { ProposalDeps } from "./proposals.js";
import { BlockIndex, ProposalRecord } from "./store.js";

const incidents = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "proposal");
const governance = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "proposal-governance");

/**
 * Turns incidents, blocked verdicts and baked canaries into inert proposals; approves and rejects
 * them on command; follows what the git actuator did with the approved ones.
 */
export const proposalService: ServiceDefinition = {
  name: "proposal",
  async start(context) {
    if (incidents === undefined || governance === undefined) {
      throw new Error("the topology declares no proposal or proposal-governance consumer");
    }
    const catalog = await loadServiceCatalog(context);
    const services = new Map(catalog.services.map((s) => [s.name, s]));
    const bus = await openServiceBus(context);
    const deploys = {
      seen: await openKv(bus, "deploys", SeenDeploy),
      history: await openKv(bus, "deploys", DeployHistory),
      publish: (envelope: Envelope) => publishEvent(bus, envelope),
    };
    const deps: ProposalDeps = {
      proposals: await openKv(bus, "proposals", ProposalRecord),
      blocks: await openKv(bus, "proposals", BlockIndex),
      publish: deploys.publish,
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
      liveRevisionAt: async (service, burnBegan) =>
        liveRevisionAt(
          (await deploys.history.get(`history.${service}`))?.value.items ?? [],
          burnBegan,
        ),
    };
    const opened = onIncidentOpened(deps);
    const escalated = onIncidentEscalated(deps);
    const incidentSubscription = consumeEvents(bus, {
      consumer: incidents,
      handler: async (envelope) => {
        if (envelope.type === "incidents.opened") await opened(envelope);
        if (envelope.type === "incidents.escalated") await escalated(envelope);
      },
    });
    const verdict = onVerdict(deps);
    const healthy = onCanaryHealthy(deps);
    const outcome = onActionOutcome(deps);
    const governanceSubscription = consumeEvents(bus, {
      consumer: governance,
      handler: async (envelope) => {
        switch (envelope.type) {
          case "governance.verdict":
            return verdict(envelope);
          case "governance.canary-healthy":
            return healthy(envelope);
          case "governance.action-completed":
          case "governance.action-failed":
            return outcome(envelope);
          default:
            return; // the rest of GOVERNANCE is not this service's business
        }
      },
    });
    const approving = await serveCommand(bus, "proposal.approve", (request) =>
      approve(deps, request),
    );
    const rejecting = await serveCommand(bus, "proposal.reject", (request) =>
      reject(deps, request),
    );
    const reverting = await serveCommand(bus, "proposal.revert", (request) =>
      requestRevert(deps, request),
    );
    const promoting = await serveCommand(bus, "proposal.promotion", (request) =>
      requestPromotion(deps, request),
    );
    const recording = await serveCommand(bus, "deploy.record", (r) => recordDeploy(deploys, r));
    const listing = await serveCommand(bus, "deploy.list", (r) => listDeploys(deploys, r));
    return {
      stop: async () => {
        await Promise.all([
          approving.stop(),
          rejecting.stop(),
          reverting.stop(),
          promoting.stop(),
          recording.stop(),
          listing.stop(),
        ]);
        await Promise.all([incidentSubscription.stop(), governanceSubscription.stop()]);
        await bus.close();
      },
    };
  },
};
