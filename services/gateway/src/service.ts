import { migrateAudit } from "@safedeploy/audit";
import { checkDatabase, createPool } from "@safedeploy/db";
import { auditAnchors, requestCommand } from "@safedeploy/jetstream";
import { ConfigError, loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { DEFAULT_RATE_LIMIT, buildGateway } from "./app.js";
import type { GatewayDeps } from "./deps.js";
import { loadTokens } from "./tokens.js";

/** What the gateway takes beyond the shared configuration. */
export interface GatewayOptions {
  /** Requests per minute per token or address (`GATEWAY_RATE_LIMIT`), default 600. */
  readonly rateLimitPerMinute?: number;
  /** The dashboard's files; default `@safedeploy/dashboard`'s. */
  readonly dashboardDir?: string | null;
  readonly events?: GatewayDeps["events"];
  /** Called with the gateway's URL once it listens (tests listening on port 0 learn it here). */
  readonly onListening?: (url: string) => void;
}

/** The gateway's own variables: `GATEWAY_RATE_LIMIT` (requests per minute, default 600). */
export function gatewayOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): GatewayOptions {
  const text = env.GATEWAY_RATE_LIMIT;
  if (text === undefined || text === "") return {};
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) {
    throw new ConfigError([
      { variable: "GATEWAY_RATE_LIMIT", message: "must be a whole number of requests per minute" },
    ]);
  }
  return { rateLimitPerMinute: Number(text) };
}

/**
 * The HTTP gateway: reads the PostgreSQL read model, sends writes and gate queries as commands
 * over NATS, authenticates with the tokens of `SAFEDEPLOY_TOKENS`, listens on `GATEWAY_HOST` and
 * `GATEWAY_PORT`.
 */
export function createGatewayService(options: GatewayOptions = {}): ServiceDefinition {
  return {
    name: "gateway",
    async start(context) {
      const url = context.config.databaseUrl;
      if (url === undefined) {
        throw new ConfigError([
          {
            variable: "DATABASE_URL",
            message: "the gateway needs the PostgreSQL read model (postgres://…)",
          },
        ]);
      }
      const log = context.log.child({ component: "gateway" });
      const tokensFile = context.config.tokensFile;
      const tokens = tokensFile === undefined ? null : await loadTokens(tokensFile);
      if (tokens === null) {
        log.warn({}, "SAFEDEPLOY_TOKENS is not set: the API refuses every request but health");
      }
      const catalog = await loadServiceCatalog(context);
      const pool = createPool({ connectionString: url, applicationName: "gateway", logger: log });
      let bus;
      try {
        // The audit service owns these tables; migrating is idempotent and lets either start first.
        await migrateAudit(pool, { logger: log });
        bus = await openServiceBus(context);
      } catch (error) {
        await pool.end();
        throw error;
      }
      context.addReadinessCheck("postgres", (signal) => checkDatabase(pool, { signal }));
      const connected = bus;
      const app = await buildGateway({
        pool,
        catalog,
        tokens,
        sendCommand: (command, request) => requestCommand(connected, command, request),
        auditAnchors: () => auditAnchors(connected),
        clock: { now: () => new Date() },
        readiness: {
          nats: () =>
            connected.isConnected()
              ? Promise.resolve()
              : Promise.reject(new Error("NATS disconnected")),
        },
        rateLimitPerMinute: options.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT,
        extraMetrics: () => context.registry.metrics(),
        logger: context.log.child({ component: "http" }),
        ...(options.dashboardDir === undefined ? {} : { dashboardDir: options.dashboardDir }),
        ...(options.events === undefined ? {} : { events: options.events }),
      });
      let address: string;
      try {
        address = await app.listen({
          host: context.config.gateway.host,
          port: context.config.gateway.port,
        });
      } catch (error) {
        await app.close();
        await connected.close();
        await pool.end();
        throw error;
      }
      log.info({ address }, "gateway listening");
      options.onListening?.(address);
      return {
        stop: async () => {
          await app.close();
          await connected.close();
          await pool.end();
        },
      };
    },
  };
}

/** The gateway with its defaults. */
export const gatewayService: ServiceDefinition = createGatewayService();
