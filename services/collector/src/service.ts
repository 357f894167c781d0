import { consumeEvents, publishEvent } from "@safedeploy/jetstream";
import { createPrometheusClient } from "@safedeploy/prometheus";
import { loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { Counter, Histogram } from "prom-client";
import { onPollJob } from "./handlers/poll.js";
import type { CollectedService } from "./handlers/poll.js";
import { recordedReader } from "./measure.js";
import { startScheduler } from "./scheduler.js";

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "collector-poll");

/**
 * Polls Prometheus for every SLO of the catalog and publishes SLI snapshots to METRICS.
 * `SAFEDEPLOY_COLLECTOR_MODE` sets the default mode (`direct` or `recorded`) for SLOs that do not
 * name one in `sli.mode`.
 */
export const collectorService: ServiceDefinition = {
  name: "collector",
  async start(context) {
    if (consumer === undefined) throw new Error("the topology declares no collector-poll consumer");
    const catalog = await loadServiceCatalog(context);
    const services = new Map<string, CollectedService>(
      catalog.services.map((s) => [s.name, { slos: s.spec.slos, burnRates: s.policy.burnRates }]),
    );
    const mode = context.config.collectorMode;
    const prometheusOptions = { baseUrl: context.config.prometheusUrl, timeoutMs: 10_000 };
    const prometheus = createPrometheusClient(prometheusOptions);
    // Two windows' pairs of answers at a time: Prometheus computes the next pair while this one is
    // parsed. One at a time left each side idle half the time; all twelve at once (each holds every
    // series of the fleet) set the collector's peak memory.
    const recorded = recordedReader(
      createPrometheusClient({ ...prometheusOptions, concurrency: 4 }),
    );
    const bus = await openServiceBus(context);
    context.addReadinessCheck("prometheus", async () => {
      await prometheus.queryScalar("scalar(vector(1))");
    });

    const snapshots = new Counter({
      name: "safedeploy_collector_snapshots_total",
      help: "SLI snapshots published (one per service and interval, holding all its SLOs).",
      registers: [context.registry],
    });
    const failures = new Counter({
      name: "safedeploy_collector_prometheus_failures_total",
      help: "Poll jobs that failed because Prometheus was unreachable (retried).",
      registers: [context.registry],
    });
    const skipped = new Counter({
      name: "safedeploy_collector_jobs_skipped_total",
      help: "Poll jobs dropped without a snapshot, by reason.",
      labelNames: ["reason"],
      registers: [context.registry],
    });
    const lag = new Histogram({
      name: "safedeploy_collector_job_lag_seconds",
      help: "From a job's evaluation time to its snapshots being published.",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [context.registry],
    });

    const outageSnapshots = new Counter({
      name: "safedeploy_collector_outage_snapshots_total",
      help: "Explicit unknown snapshots published because Prometheus could not be reached.",
      registers: [context.registry],
    });
    const backoffMs = [1_000, 2_000, 5_000, 10_000];
    const maxDeliver = consumer.maxDeliver;
    let lastOutageAt: number | undefined;
    let lastOutageError: string | undefined;
    const poll = onPollJob({
      serviceFor: (name) => services.get(name),
      prometheus,
      recorded,
      now: () => new Date(),
      pollIntervalMs: context.config.pollIntervalMs,
      lastOutageAt: () => lastOutageAt,
      lastOutageError: () => lastOutageError,
      nextRetryInMs: (deliveryCount) =>
        deliveryCount >= maxDeliver
          ? null
          : (backoffMs[Math.min(deliveryCount - 1, backoffMs.length - 1)] ?? null),
      onOutagePublished: (count) => {
        outageSnapshots.inc(count);
      },
      onOutage: (job, error) => {
        lastOutageAt = Date.now();
        lastOutageError = error.message;
        failures.inc();
        context.log.warn(
          { service: job.service, error: error.message },
          "Prometheus unavailable; will retry while on time, then publish unknown",
        );
      },
      onSkipped: (reason) => {
        // Counted, not logged per job: an overloaded fleet would drown the log.
        skipped.inc({ reason });
        context.log.debug({ reason }, "poll job skipped");
      },
      publish: async (envelope) => {
        // Built by core from validated answers; the budget service validates it on receipt.
        await publishEvent(bus, envelope, { validate: false });
        snapshots.inc();
      },
    });
    const subscription = consumeEvents(bus, {
      consumer,
      types: ["metrics.poll-requested"],
      backoffMs,
      // Jobs of one interval share the cached recorded queries; run many at once.
      concurrency: 32,
      batch: 128,
      // A snapshot's id names its service and interval: a redelivery publishes nothing new.
      confirmAcks: false,
      handler: async (job, { deliveryCount }) => {
        await poll(job, deliveryCount);
        lag.observe((Date.now() - Date.parse(job.data.intervalStart)) / 1_000);
      },
    });
    const scheduler = startScheduler({
      // A service without SLOs has nothing to measure: no job, no message.
      services: () => [...services].filter(([, s]) => s.slos.length > 0).map(([name]) => name),
      intervalMs: context.config.pollIntervalMs,
      mode,
      publish: (envelope) => publishEvent(bus, envelope, { validate: false }),
      onError: (error) => {
        context.log.error({ error: String(error) }, "scheduling poll jobs failed");
      },
      onTick: ({ start, jobs }) => {
        recorded.evict(new Date(start.getTime() - 3 * context.config.pollIntervalMs));
        context.log.debug({ interval: start.toISOString(), jobs }, "poll jobs scheduled");
      },
    });
    return {
      stop: async () => {
        scheduler.stop();
        await subscription.stop();
        await bus.close();
      },
    };
  },
};
