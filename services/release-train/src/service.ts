import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import {
  CommandFailedError,
  consumeEvents,
  openKv,
  publishEvent,
  requestCommand,
  serveCommand,
} from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { createPrometheusClient } from "@safedeploy/prometheus";
import { measureErrors, probeHealth, regressionQueries } from "@safedeploy/release";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { API_VERSION, SAFEDEPLOY_TOPOLOGY, qualifiedName } from "@safedeploy/schema";
import { startTrainCommand, trainListCommand, trainStatusCommand } from "./commands.js";
import type { TrainDeps } from "./deps.js";
import { activeTrains, advanceTrain } from "./driver.js";
import { parseTrainActionId } from "@safedeploy/core";
import { callHttpHook } from "./hooks.js";
import { onActionOutcome, onProposalDecision } from "./outcomes.js";
import { migrateLegacyIndex } from "./legacy-index.js";
import { LISTING_PREFIX, TrainClaim, TrainListing, TrainRecord } from "./store.js";

/**
 * The keys under `prefix` of a bucket, less the prefix: read from the bucket stream's subjects
 * (`STREAM.INFO` with a subject filter, which a service user may ask), not with a consumer.
 */
async function listedKeys(bus: Bus, bucket: string, prefix: string): Promise<string[]> {
  const name = qualifiedName(bus.ns, bucket);
  const subject = `$KV.${name}.${prefix}`;
  const info = await bus.jsm.streams.info(`KV_${name}`, { subjects_filter: `${subject}>` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(subject.length));
}

const durable = (name: string) => SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === name);
const completions = durable("release-train-actions");
const failures = durable("release-train-failures");
const approvals = durable("release-train-approvals");
const rejections = durable("release-train-rejections");

/** Knobs of the release-train service; the defaults suit production. */
export interface ReleaseTrainOptions {
  /** How often each replica looks for due timers and work (default 1 s). */
  readonly tickMs?: number;
  /**
   * How long a train stays claimed by a replica that stopped renewing it (default 15 s): the
   * claim is renewed every third of it while a pass runs, so only a dead replica lets it lapse.
   */
  readonly leaseMs?: number;
  /** Per-probe timeout of health checks (default 10 s). */
  readonly probeTimeoutMs?: number;
  /** Timeout of one strategy hook call (default 10 s); no answer in time fails the step. */
  readonly hookTimeoutMs?: number;
}

/**
 * Release trains: `train.start` plans and stores a train; every replica's driver advances the
 * active trains one durable step at a time (the service's gate, then the step's promotion
 * proposal and its approvals, promotion through the git actuator, guard window, health,
 * regression and gate checks, halt with a failed guard and a one-service revert proposal or
 * manual triage, follow-ups that fail a failing service's guard). State and timers live in the
 * `trains` bucket, so any replica resumes any train after a restart; approvals and rejections
 * arrive through durable consumers, so none is lost while a step waits.
 */
export function createReleaseTrainService(options: ReleaseTrainOptions = {}): ServiceDefinition {
  return {
    name: "release-train",
    async start(context) {
      if (
        completions === undefined ||
        failures === undefined ||
        approvals === undefined ||
        rejections === undefined
      ) {
        throw new Error("the topology declares no release-train consumers");
      }
      const log = context.log.child({ component: "release-train" });
      const catalog = await loadServiceCatalog(context);
      const bus = await openServiceBus(context);
      const prometheus = createPrometheusClient({
        baseUrl: context.config.prometheusUrl,
        timeoutMs: 10_000,
      });
      const services = new Map(catalog.services.map((s) => [s.name, s]));
      const deps: TrainDeps = {
        services,
        catalogTrains: new Map(catalog.trains.map((t) => [t.metadata.name, t])),
        trains: await openKv(bus, "trains", TrainRecord),
        listings: await openKv(bus, "trains", TrainListing),
        claims: await openKv(bus, "trains", TrainClaim),
        listedTrainIds: () => listedKeys(bus, "trains", LISTING_PREFIX),
        publish: (envelope) => publishEvent(bus, envelope),
        gate: async (service) => {
          const reply = await requestCommand(bus, "gate.query", { service });
          if (!reply.ok) throw new CommandFailedError(reply.error.code, reply.error.message);
          return reply.result;
        },
        requestRevert: async (request) => {
          const reply = await requestCommand(bus, "proposal.revert", request);
          if (!reply.ok) throw new CommandFailedError(reply.error.code, reply.error.message);
          return reply.result;
        },
        requestPromotion: async (request) => {
          const reply = await requestCommand(bus, "proposal.promotion", request);
          if (!reply.ok) throw new CommandFailedError(reply.error.code, reply.error.message);
          return reply.result;
        },
        failGuard: async (request) => {
          const reply = await requestCommand(bus, "guard.fail", request);
          if (!reply.ok) throw new CommandFailedError(reply.error.code, reply.error.message);
          return reply.result;
        },
        probe: (check) =>
          probeHealth(check, {
            fetch: globalThis.fetch,
            timeoutMs: options.probeTimeoutMs ?? 10_000,
          }),
        measureErrors: async (name, window) => {
          const service = services.get(name);
          const queries =
            service === undefined
              ? null
              : regressionQueries({
                  apiVersion: API_VERSION,
                  kind: "Service",
                  metadata: { name: service.name, owner: service.owner },
                  spec: service.spec,
                });
          if (queries === null) {
            throw new Error(`${name} declares no SLO whose queries a regression could compare`);
          }
          return measureErrors(prometheus, queries, {
            deployedAt: new Date(window.deployedAt),
            windowMs: window.windowMs,
            now: new Date(window.now),
          });
        },
        callHook: (request) =>
          callHttpHook(request, {
            fetch: globalThis.fetch,
            timeoutMs: options.hookTimeoutMs ?? 10_000,
          }),
        now: () => new Date().toISOString(),
        newTrainId: () => `TRN-${randomBytes(6).toString("hex").toUpperCase()}`,
        owner: `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`,
        leaseMs: options.leaseMs ?? 15_000,
        log,
      };

      const migrated = await migrateLegacyIndex(bus, deps);
      if (migrated > 0) log.info({ trains: migrated }, "trains of the single index listed anew");

      // One pass at a time per replica: a kick during a pass runs another right after it.
      const lifecycle = { stopping: false };
      const stopping = () => lifecycle.stopping;
      let pass: Promise<void> = Promise.resolve();
      const runPass = (only?: string) => {
        pass = pass.then(async () => {
          if (stopping()) return;
          try {
            const ids = only === undefined ? await activeTrains(deps) : [only];
            for (const id of ids) {
              if (stopping()) return;
              await advanceTrain(deps, id);
            }
          } catch (error) {
            log.warn({ err: error }, "release train pass failed; retrying on the next tick");
          }
        });
        return pass;
      };
      const outcome = onActionOutcome(deps);
      const decision = onProposalDecision(deps);
      const subscriptions = [
        consumeEvents(bus, {
          consumer: completions,
          types: ["governance.action-completed"],
          handler: async (envelope) => {
            await outcome(envelope);
            const action = parseTrainActionId(envelope.data.proposalId);
            if (action !== null) void runPass(action.trainId);
          },
        }),
        consumeEvents(bus, {
          consumer: failures,
          types: ["governance.action-failed"],
          handler: async (envelope) => {
            await outcome(envelope);
            const action = parseTrainActionId(envelope.data.proposalId);
            if (action !== null) void runPass(action.trainId);
          },
        }),
        consumeEvents(bus, {
          consumer: approvals,
          types: ["governance.proposal-approved"],
          handler: async (envelope) => {
            const trainId = await decision(envelope);
            if (trainId !== null) void runPass(trainId);
          },
        }),
        consumeEvents(bus, {
          consumer: rejections,
          types: ["governance.proposal-rejected"],
          handler: async (envelope) => {
            const trainId = await decision(envelope);
            if (trainId !== null) void runPass(trainId);
          },
        }),
      ];
      const commands = [
        await serveCommand(
          bus,
          "train.start",
          startTrainCommand(deps, (id) => void runPass(id)),
        ),
        await serveCommand(bus, "train.status", trainStatusCommand(deps)),
        await serveCommand(bus, "train.list", trainListCommand(deps)),
      ];
      const ticker = setInterval(() => void runPass(), options.tickMs ?? 1_000);
      void runPass();
      return {
        stop: async () => {
          lifecycle.stopping = true;
          clearInterval(ticker);
          await Promise.all(commands.map((command) => command.stop()));
          await Promise.all(subscriptions.map((subscription) => subscription.stop()));
          await pass;
          await bus.close();
        },
      };
    },
  };
}

/** The release-train service with production defaults. */
export const releaseTrainService: ServiceDefinition = createReleaseTrainService();
