import { appendBatch, migrateAudit } from "@safedeploy/audit";
import type { AuditMessage } from "@safedeploy/audit";
import { checkDatabase, createPool } from "@safedeploy/db";
import type { DbLogger } from "@safedeploy/db";
import { consumeRaw } from "@safedeploy/jetstream";
import type { RawMessage } from "@safedeploy/jetstream";
import { ConfigError, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { AUDIT_CONSUMERS } from "@safedeploy/schema";
import { Counter, Gauge } from "prom-client";
import { openHeadAnchors } from "./anchor.js";

/** The audit service's durable consumers: one per stream, every subject. */
export { AUDIT_CONSUMERS };

function toAuditMessage(m: RawMessage): AuditMessage {
  return {
    seq: m.streamSequence,
    subject: m.subject,
    headers: m.headers,
    data: m.data,
    time: m.time,
  };
}

/** How the audit service batches (tests shrink them) and which role migrates. */
export interface AuditTuning {
  readonly maxBatch?: number;
  readonly lingerMs?: number;
  readonly backoffMs?: readonly number[];
  /**
   * PostgreSQL URL of the schema owner (`SAFEDEPLOY_AUDIT_MIGRATOR_URL`): when set, migrations
   * and grants run as that role and `DATABASE_URL` (the audit writer) only reads and appends.
   * Unset: `DATABASE_URL` migrates too (one role for everything).
   */
  readonly migratorUrl?: string;
}

/** The migrator URL, validated; empty counts as unset, as the runtime's configuration does. */
function migratorUrlOf(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^postgres(ql)?:\/\//.test(value)) {
    throw new ConfigError([
      {
        variable: "SAFEDEPLOY_AUDIT_MIGRATOR_URL",
        message: "must be a PostgreSQL connection string (postgres://…) of the schema owner",
      },
    ]);
  }
  return value;
}

/** Runs the audit migrations over `url` (its own short-lived pool) or over `pool`. */
async function migrateWith(
  pool: ReturnType<typeof createPool>,
  url: string | undefined,
  log: DbLogger,
): Promise<void> {
  const logging = { logger: log };
  if (url === undefined) {
    await migrateAudit(pool, logging);
    return;
  }
  const migrator = createPool({ connectionString: url, max: 2, applicationName: "audit-migrator" });
  try {
    await migrateAudit(migrator, logging);
  } finally {
    await migrator.end();
  }
}

/**
 * Stores every message of every stream once in the hash-chained audit log and keeps the read
 * model, one transaction per batch; anchors the stream's chain head in JetStream KV, and acks
 * only after both. A database or NATS outage naks the batch, which comes back later: nothing is
 * lost, and the redelivery anchors the head again.
 */
export function auditService(tuning: AuditTuning = {}): ServiceDefinition {
  return {
    name: "audit",
    async start(context) {
      const url = context.config.databaseUrl;
      if (url === undefined) {
        throw new ConfigError([
          {
            variable: "DATABASE_URL",
            message: "the audit service needs a PostgreSQL connection string (postgres://…)",
          },
        ]);
      }
      const migratorUrl = migratorUrlOf(tuning.migratorUrl);
      const log = context.log.child({ component: "audit" });
      const pool = createPool({ connectionString: url, applicationName: "audit", logger: log });
      try {
        await migrateWith(pool, migratorUrl, log);
      } catch (error) {
        await pool.end();
        throw error;
      }
      context.addReadinessCheck("postgres", (signal) => checkDatabase(pool, { signal }));
      const bus = await openServiceBus(context);
      const anchors = await openHeadAnchors(bus);
      // How far the audit log (and the read model the API serves) is behind each stream, and why.
      const labelNames = ["stream"] as const;
      const registers = [context.registry];
      const stored = new Counter({
        name: "safedeploy_audit_messages_stored_total",
        help: "Messages written to the audit log.",
        labelNames,
        registers,
      });
      const skipped = new Counter({
        name: "safedeploy_audit_messages_skipped_total",
        help: "Messages already stored (redeliveries).",
        labelNames,
        registers,
      });
      const refused = new Counter({
        name: "safedeploy_audit_read_model_refusals_total",
        help: "Envelopes stored in the log that the read model refused (an invariant held).",
        labelNames,
        registers,
      });
      const failed = new Counter({
        name: "safedeploy_audit_batch_failures_total",
        help: "Batches that failed to commit (redelivered later).",
        labelNames,
        registers,
      });
      const newest = new Gauge({
        name: "safedeploy_audit_stored_seq",
        help: "The newest stream sequence committed to the audit log.",
        labelNames,
        registers,
      });
      const newestSeq = new Map<string, number>();
      const subscriptions = AUDIT_CONSUMERS.map((consumer) =>
        consumeRaw(bus, {
          consumer,
          ...(tuning.maxBatch === undefined ? {} : { maxBatch: tuning.maxBatch }),
          ...(tuning.lingerMs === undefined ? {} : { lingerMs: tuning.lingerMs }),
          ...(tuning.backoffMs === undefined ? {} : { backoffMs: tuning.backoffMs }),
          handler: async (batch) => {
            const stream = { stream: consumer.stream };
            const report = await appendBatch(pool, consumer.stream, batch.map(toAuditMessage), {
              logger: log,
            }).catch((error: unknown) => {
              failed.inc(stream);
              throw error;
            });
            if (report.head !== null) await anchors.record(consumer.stream, report.head);
            stored.inc(stream, report.stored);
            skipped.inc(stream, report.skipped);
            refused.inc(stream, report.refused.length);
            // A redelivered older batch must not move it back.
            const seq = Math.max(
              newestSeq.get(consumer.stream) ?? 0,
              ...batch.map((m) => m.streamSequence),
            );
            newestSeq.set(consumer.stream, seq);
            newest.set(stream, seq);
            log.debug(
              { stream: consumer.stream, stored: report.stored, skipped: report.skipped },
              "batch stored",
            );
          },
        }),
      );
      return {
        stop: async () => {
          await Promise.all(subscriptions.map((subscription) => subscription.stop()));
          await bus.close();
          await pool.end();
        },
      };
    },
  };
}
