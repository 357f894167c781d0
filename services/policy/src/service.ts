import { pollIntervalAt } from "@safedeploy/core";
import { consumeEvents, openKv, publishEvent, serveCommand } from "@safedeploy/jetstream";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import type { PolicyDeps } from "./deps.js";
import { reportCanaryStep } from "./handlers/canary.js";
import { createFreeze, liftFreezes } from "./handlers/freezes.js";
import {
  isOverrideKey,
  openFreezeWindows,
  overrideFreezeWindows,
} from "./handlers/freeze-windows.js";
import { clearGuardsCommand, failGuard, onActionCompleted } from "./handlers/guards.js";
import {
  judgeOnClock,
  onEvaluation,
  publishStartupVerdicts,
  queryGate,
} from "./handlers/verdicts.js";
import { CanaryRecord, FreezeRecord, GuardRecord, PolicyRecord } from "./store.js";

const durable = (name: string) => {
  const found = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === name);
  if (found === undefined) throw new Error(`the topology declares no ${name} consumer`);
  return found;
};

/**
 * Runtime and structural policy: keeps the latest evaluation per SLO, opens a freeze when a budget
 * is exhausted, records failed release-train guards, publishes a service's verdict when it changes
 * (on new evidence, freezes and guards, and on its own clock, so evidence that stops arriving turns
 * the verdict `unknown`), notices baked canary steps, and answers `gate.query`, `freeze.create`,
 * `freeze.lift`, `canary.step`, `guard.fail` and `guard.clear`. State lives in KV, so freezes,
 * guards and canary steps outlive restarts.
 */
export const policyService: ServiceDefinition = {
  name: "policy",
  async start(context) {
    const catalog = await loadServiceCatalog(context);
    const bus = await openServiceBus(context);
    const pollIntervalMs = context.config.pollIntervalMs;
    const freezeWindows = await openFreezeWindows(bus, catalog);
    const deps: PolicyDeps = {
      services: new Map(catalog.services.map((s) => [s.name, s])),
      // Read on every evaluation, gate query and clock tick: served from exact local mirrors.
      records: await openKv(bus, "verdicts", PolicyRecord, { mirror: true }),
      freezes: await openKv(bus, "freezes", FreezeRecord, {
        mirror: { keys: (key) => !isOverrideKey(key) },
      }),
      guards: await openKv(bus, "guards", GuardRecord, { mirror: true }),
      canaries: await openKv(bus, "canaries", CanaryRecord, { mirror: true }),
      publish: (envelope) => publishEvent(bus, envelope),
      now: () => new Date().toISOString(),
      pollIntervalMs,
      freezeWindows,
    };
    await publishStartupVerdicts(deps);
    const subscriptions = [
      consumeEvents(bus, {
        consumer: durable("policy"),
        types: ["budget.evaluated"],
        handler: onEvaluation(deps),
        concurrency: 16,
        // Compare-and-set on the record and verdict ids make a redelivery harmless.
        confirmAcks: false,
      }),
      consumeEvents(bus, {
        consumer: durable("policy-actions"),
        types: ["governance.action-completed"],
        handler: onActionCompleted(deps),
      }),
    ];
    const commands = [
      await serveCommand(bus, "gate.query", queryGate(deps)),
      await serveCommand(bus, "freeze.create", createFreeze(deps)),
      await serveCommand(bus, "freeze.lift", liftFreezes(deps)),
      await serveCommand(bus, "freeze.override", overrideFreezeWindows(deps, freezeWindows)),
      await serveCommand(bus, "canary.step", reportCanaryStep(deps)),
      await serveCommand(bus, "guard.fail", failGuard(deps)),
      await serveCommand(bus, "guard.clear", clearGuardsCommand(deps)),
    ];
    const clock = startClock(pollIntervalMs, async (at) => {
      await judgeOnClock(deps, at).catch((error: unknown) => {
        context.log.error({ error: String(error), at }, "judging on the clock failed");
      });
    });
    return {
      stop: async () => {
        clock.stop();
        await Promise.all(commands.map((command) => command.stop()));
        await Promise.all(subscriptions.map((subscription) => subscription.stop()));
        await clock.idle();
        await bus.close();
      },
    };
  },
};

/**
 * Calls `tick` at every multiple of `intervalMs` since the epoch (every replica at the same
 * moments), with that moment; a tick still running when the next is due makes it wait.
 */
function startClock(intervalMs: number, tick: (at: string) => Promise<void>) {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    const now = Date.now();
    const next = pollIntervalAt(new Date(now), intervalMs).end.getTime();
    timer = setTimeout(() => {
      running = tick(new Date(next).toISOString()).finally(schedule);
    }, next - now);
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
    idle: () => running,
  };
}
