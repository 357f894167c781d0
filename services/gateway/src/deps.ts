import type { AuditPool, StreamAnchor } from "@safedeploy/audit";
import type { Catalog } from "@safedeploy/catalog";
import type { CommandName, CommandReply, CommandRequest } from "@safedeploy/schema";
import type { FastifyBaseLogger } from "fastify";
import type { SlackIntegration } from "./routes/slack.js";
import type { TokenStore } from "./tokens.js";

/** Sends a command to its owning service and resolves to its reply (`requestCommand`'s shape). */
export type SendCommand = <C extends CommandName>(
  command: C,
  request: CommandRequest<C>,
) => Promise<CommandReply<C>>;

/** What the gateway's answers depend on; every effect is passed in. */
export interface GatewayDeps {
  /** The read model and audit log (PostgreSQL). */
  readonly pool: AuditPool;
  /** Writes and live gate queries, over NATS request/reply. */
  readonly sendCommand: SendCommand;
  /**
   * What JetStream says the audit log must hold (the audit durables' ack floors), so `/audit/verify`
   * also sees a cut-off tail; without it only the chain is checked.
   */
  readonly auditAnchors?: () => Promise<readonly StreamAnchor[]>;
  readonly catalog: Catalog;
  /** Null when no tokens file is configured: every `/v1` route then answers 401. */
  readonly tokens: TokenStore | null;
  readonly clock: { now(): Date };
  /** Checks of `/readyz` besides PostgreSQL, by name (e.g. `nats`). */
  readonly readiness?: Readonly<Record<string, () => Promise<void>>>;
  /** Requests per minute per token (or per address without one); default 600. */
  readonly rateLimitPerMinute?: number;
  /** The dashboard's static files; default `@safedeploy/dashboard`'s, else a placeholder page. */
  readonly dashboardDir?: string | null;
  /** More Prometheus text appended to `/metrics` (the process metrics of the service registry). */
  readonly extraMetrics?: () => Promise<string>;
  /**
   * `/v1/events`: how often the shared poller reads the log (default 250 ms), the heartbeat
   * (default 15 s), and how many streams one token may hold open (default 4).
   */
  readonly events?: {
    readonly pollMs?: number;
    readonly heartbeatMs?: number;
    readonly streamsPerToken?: number;
  };
  readonly logger?: FastifyBaseLogger;
  /** Slack's Approve / Reject (`POST /slack/interactivity`); absent: that route answers 404. */
  readonly slack?: SlackIntegration;
}
