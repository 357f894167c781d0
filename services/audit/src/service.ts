import { appendBatch, migrateAudit } from "@safedeploy/audit";
import type { AuditMessage } from "@safedeploy/audit";
import { checkDatabase, createPool } from "@safedeploy/db";
import { consumeRaw } from "@safedeploy/jetstream";
import type { RawMessage } from "@safedeploy/jetstream";
import { ConfigError, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { AUDIT_CONSUMERS } from "@safedeploy/schema";

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

/** How the audit service batches; tests shrink them. */
export interface AuditTuning {
  readonly maxBatch?: number;
  readonly lingerMs?: number;
  readonly backoffMs?: readonly number[];
}

/**
 * Stores every message of every stream once in the hash-chained audit log and keeps the read
 * model, one transaction per batch, acking only after it committed. A database outage naks the
 * batch, which comes back later: nothing is lost.
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
      const log = context.log.child({ component: "audit" });
      const pool = createPool({ connectionString: url, applicationName: "audit", logger: log });
      try {
        await migrateAudit(pool, { logger: log });
      } catch (error) {
        await pool.end();
        throw error;
      }
      context.addReadinessCheck("postgres", (signal) => checkDatabase(pool, { signal }));
      const bus = await openServiceBus(context);
      const subscriptions = AUDIT_CONSUMERS.map((consumer) =>
        consumeRaw(bus, {
          consumer,
          ...(tuning.maxBatch === undefined ? {} : { maxBatch: tuning.maxBatch }),
          ...(tuning.lingerMs === undefined ? {} : { lingerMs: tuning.lingerMs }),
          ...(tuning.backoffMs === undefined ? {} : { backoffMs: tuning.backoffMs }),
          handler: async (batch) => {
            const report = await appendBatch(pool, consumer.stream, batch.map(toAuditMessage), {
              logger: log,
            });
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
