import { migrateAudit } from "@safedeploy/audit";
import { checkDatabase, createPool } from "@safedeploy/db";
import { auditAnchors, requestCommand } from "@safedeploy/jetstream";
import { ConfigError, loadServiceCatalog, openServiceBus } from "@safedeploy/runtime";
import type { ServiceDefinition } from "@safedeploy/runtime";
import { parseDuration } from "@safedeploy/schema";
import { DEFAULT_RATE_LIMIT, buildGateway } from "./app.js";
import type { GatewayDeps } from "./deps.js";
import { DEFAULT_STATEMENT_TIMEOUT_MS, withStatementTimeout } from "./statement-timeout.js";
import { reloadingTokens } from "./token-reload.js";

/** What the gateway takes beyond the shared configuration. */
export interface GatewayOptions {
  /** Requests per minute per token or address (`GATEWAY_RATE_LIMIT`), default 600. */
  readonly rateLimitPerMinute?: number;
  /** The dashboard's files; default `@safedeploy/dashboard`'s. */
  readonly dashboardDir?: string | null;
  readonly events?: GatewayDeps["events"];
  /** How long one PostgreSQL statement may run (`GATEWAY_STATEMENT_TIMEOUT`), default 5 s. */
  readonly statementTimeoutMs?: number;
  /** How often the tokens file is checked for changes, default 2 s. */
  readonly tokensReloadMs?: number;
  /** Slack's Approve / Reject (`SAFEDEPLOY_SLACK_*`, see `slackFromEnv`). */
  readonly slack?: GatewayDeps["slack"];
  /** Called with the gateway's URL once it listens (tests listening on port 0 learn it here). */
  readonly onListening?: (url: string) => void;
}

/** A whole number in [1, max] from `variable`, or a problem naming it. */
function wholeNumber(
  variable: string,
  text: string,
  max: number,
  what: string,
): number | { variable: string; message: string } {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) {
    return { variable, message: `must be a whole number of ${what} (1 to ${max})` };
  }
  return Number(text);
}

/**
 * The gateway's own variables: `GATEWAY_RATE_LIMIT` (requests per minute, default 600),
 * `GATEWAY_STATEMENT_TIMEOUT` (a duration, default 5s) and `GATEWAY_SSE_MAX_PER_TOKEN` (event
 * streams one token may hold open, default 4).
 */
export function gatewayOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): GatewayOptions {
  const problems: { variable: string; message: string }[] = [];
  const options: {
    rateLimitPerMinute?: number;
    statementTimeoutMs?: number;
    events?: { streamsPerToken: number };
  } = {};
  const rate = env.GATEWAY_RATE_LIMIT;
  if (rate !== undefined && rate !== "") {
    const parsed = wholeNumber("GATEWAY_RATE_LIMIT", rate, 9_999_999, "requests per minute");
    if (typeof parsed === "number") options.rateLimitPerMinute = parsed;
    else problems.push(parsed);
  }
  const timeout = env.GATEWAY_STATEMENT_TIMEOUT;
  if (timeout !== undefined && timeout !== "") {
    const ms = parseDuration(timeout);
    if (ms === undefined || ms < 1 || ms > 3_600_000) {
      problems.push({
        variable: "GATEWAY_STATEMENT_TIMEOUT",
        message: "must be a duration from 1ms to 1h, such as 5s or 500ms",
      });
    } else {
      options.statementTimeoutMs = ms;
    }
  }
  const streams = env.GATEWAY_SSE_MAX_PER_TOKEN;
  if (streams !== undefined && streams !== "") {
    const parsed = wholeNumber("GATEWAY_SSE_MAX_PER_TOKEN", streams, 10_000, "event streams");
    if (typeof parsed === "number") options.events = { streamsPerToken: parsed };
    else problems.push(parsed);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return options;
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
      const tokens =
        tokensFile === undefined
          ? null
          : await reloadingTokens(tokensFile, {
              log,
              ...(options.tokensReloadMs === undefined
                ? {}
                : { intervalMs: options.tokensReloadMs }),
            });
      if (tokens === null) {
        log.warn({}, "SAFEDEPLOY_TOKENS is not set: the API refuses every request but health");
      }
      const catalog = await loadServiceCatalog(context);
      const timeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
      const limited = withStatementTimeout(url, timeoutMs);
      if (limited === null) {
        log.warn({}, "DATABASE_URL is not a URL: the gateway's statement timeout is not applied");
      }
      const pool = createPool({
        connectionString: limited ?? url,
        applicationName: "gateway",
        logger: log,
      });
      let bus;
      try {
        // The audit service owns these tables; migrating is idempotent and lets either start first.
        // Not under the statement timeout: it may wait for the audit service's migration lock.
        const migrator = createPool({ connectionString: url, max: 1, applicationName: "gateway" });
        try {
          await migrateAudit(migrator, { logger: log });
        } finally {
          await migrator.end();
        }
        bus = await openServiceBus(context);
      } catch (error) {
        tokens?.close();
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
        ...(options.slack === undefined ? {} : { slack: options.slack }),
      });
      let address: string;
      try {
        address = await app.listen({
          host: context.config.gateway.host,
          port: context.config.gateway.port,
        });
      } catch (error) {
        tokens?.close();
        await app.close();
        await connected.close();
        await pool.end();
        throw error;
      }
      log.info({ address }, "gateway listening");
      options.onListening?.(address);
      return {
        stop: async () => {
          tokens?.close();
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
