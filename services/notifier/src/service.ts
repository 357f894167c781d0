import { consumeEvents, openKv, publishEvent } from "@safedeploy/jetstream";
import { DeliveryRecord, STANDARD_RETRY_SCHEDULE_MS } from "@safedeploy/notify";
import type { Fetch } from "@safedeploy/notify";
import { ConfigError, loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { EVENT_TYPES, NOTIFIER_CONSUMERS, parseDuration } from "@safedeploy/schema";
import type { EventType } from "@safedeploy/schema";
import { Counter } from "prom-client";
import type { NotifierDeps } from "./deps.js";
import { onEvaluation } from "./handlers/budget.js";
import { onEvent } from "./handlers/notify.js";
import { loadSenders } from "./senders.js";
import { ContextRecord } from "./store.js";

/** What the notifier takes beyond the shared configuration. */
export interface NotifierOptions {
  /** Base of the links in messages (`SAFEDEPLOY_PUBLIC_URL`), default the gateway's address. */
  readonly publicUrl?: string;
  /** Directory relative secret files are read from (`SAFEDEPLOY_NOTIFIER_SECRETS_DIR`). */
  readonly secretsDir?: string;
  /** Waits between attempts (`SAFEDEPLOY_NOTIFY_RETRY`), default Standard Webhooks' schedule. */
  readonly retryScheduleMs?: readonly number[];
  /** The HTTP client; default Node's `fetch`. */
  readonly fetch?: Fetch;
}

/**
 * The notifier's variables: `SAFEDEPLOY_PUBLIC_URL`, `SAFEDEPLOY_NOTIFIER_SECRETS_DIR` and
 * `SAFEDEPLOY_NOTIFY_RETRY` (comma-separated durations, e.g. `5s,5m,30m`).
 */
export function notifierOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): NotifierOptions {
  const options: { publicUrl?: string; secretsDir?: string; retryScheduleMs?: number[] } = {};
  const problems: { variable: string; message: string }[] = [];
  const url = env.SAFEDEPLOY_PUBLIC_URL;
  if (url !== undefined && url !== "") {
    if (/^https?:\/\/[^\s]+$/.test(url)) options.publicUrl = url;
    else problems.push({ variable: "SAFEDEPLOY_PUBLIC_URL", message: "must be an http(s) URL" });
  }
  const dir = env.SAFEDEPLOY_NOTIFIER_SECRETS_DIR;
  if (dir !== undefined && dir !== "") options.secretsDir = dir;
  const retry = env.SAFEDEPLOY_NOTIFY_RETRY;
  if (retry !== undefined && retry !== "") {
    const delays = retry.split(",").map((part) => parseDuration(part.trim()));
    if (delays.some((ms) => ms === undefined || ms < 1)) {
      problems.push({
        variable: "SAFEDEPLOY_NOTIFY_RETRY",
        message: "must be comma-separated durations such as 5s,5m,30m",
      });
    } else options.retryScheduleMs = delays as number[];
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return options;
}

/**
 * Outbound notifications: consumes the events it reports (one durable each), sends each to the
 * catalog's `kind: Notifier`s that want it — Standard Webhooks or Slack Block Kit — retrying
 * 5xx and timeouts on its schedule and giving up on 4xx, once per delivery id; records every
 * outcome as a `governance.notification-*` event (the audit log) and on /metrics.
 */
export function createNotifierService(options: NotifierOptions = {}): ServiceDefinition {
  return {
    name: "notifier",
    async start(context) {
      const catalog = await loadServiceCatalog(context);
      const gateway = context.config.gateway;
      const senders = await loadSenders(catalog.notifiers, {
        publicUrl: options.publicUrl ?? `http://${gateway.host}:${gateway.port}`,
        ...(options.secretsDir === undefined ? {} : { secretsDir: options.secretsDir }),
        fetch: options.fetch ?? fetch,
        now: () => Date.now(),
      });
      const bus = await openServiceBus(context);
      const attempts = new Counter({
        name: "safedeploy_notification_attempts_total",
        help: "Notification delivery attempts, by notifier and outcome (delivered, retry, failed).",
        labelNames: ["notifier", "outcome"],
        registers: [context.registry],
      });
      const failures = new Counter({
        name: "safedeploy_notification_failures_total",
        help: "Notifications given up (a refusal, or every attempt failed), by notifier.",
        labelNames: ["notifier"],
        registers: [context.registry],
      });
      const deps: NotifierDeps = {
        senders,
        deliveries: await openKv(bus, "notifications", DeliveryRecord),
        context: await openKv(bus, "notification-context", ContextRecord),
        publish: (envelope) => publishEvent(bus, envelope),
        now: () => new Date().toISOString(),
        onAttempt: (notifier, record) => {
          const outcome = record.state === "pending" ? "retry" : record.state;
          attempts.inc({ notifier, outcome });
          if (record.state === "failed") failures.inc({ notifier });
        },
      };
      context.log.info({ notifiers: senders.map((s) => s.name) }, "notifiers loaded");
      const backoffMs = options.retryScheduleMs ?? STANDARD_RETRY_SCHEDULE_MS;
      const subscriptions = NOTIFIER_CONSUMERS.map((consumer) =>
        consumer.stream === "BUDGET"
          ? consumeEvents(bus, {
              consumer,
              types: ["budget.evaluated"],
              handler: onEvaluation(deps),
              concurrency: 16,
            })
          : consumeEvents(bus, {
              consumer,
              types: typesOf(consumer.filter),
              handler: onEvent(deps),
              backoffMs,
              concurrency: 8,
            }),
      );
      return {
        stop: async () => {
          await Promise.all(subscriptions.map((s) => s.stop()));
          await bus.close();
        },
      };
    },
  };
}

/** The event types a durable's filter carries (`>`: the incident events). */
function typesOf(filter: string): EventType[] {
  if (filter !== ">") return EVENT_TYPES.filter((type) => type === filter);
  return EVENT_TYPES.filter((type) => type.startsWith("incidents."));
}
