import { parseDuration } from "@safedeploy/schema";
import { z } from "zod";

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const url = (protocols: readonly string[]) =>
  z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL (${protocols.join(", ")})` },
  );

const port = z.coerce
  .number({ message: "must be a port number" })
  .int({ message: "must be a port number" })
  .min(0, { message: "must be between 0 and 65535" })
  .max(65_535, { message: "must be between 0 and 65535" });

const flag = z
  .enum(["", "0", "1", "false", "true"], { message: "must be 1, 0, true or false" })
  .transform((text) => text === "1" || text === "true");

/**
 * The environment every service reads (CONTRACT.md, "Configuration"). Git credentials are not
 * here: only the git actuator reads them, through {@link loadGitCredentials}.
 */
const EnvSchema = z.object({
  NATS_URL: z
    .string()
    .default("nats://127.0.0.1:4222")
    .transform((text) =>
      text
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== ""),
    )
    .pipe(
      z
        .array(url(["nats:", "tls:", "ws:", "wss:"]))
        .min(1, { message: "needs at least one server" }),
    ),
  DATABASE_URL: url(["postgres:", "postgresql:"]).optional(),
  PROMETHEUS_URL: url(["http:", "https:"]).default("http://127.0.0.1:9090"),
  SAFEDEPLOY_CATALOG: z.string().min(1).default("./catalog"),
  SAFEDEPLOY_HOME: z.string().min(1).default("./.safedeploy"),
  SAFEDEPLOY_ENV_REPO: z.string().min(1).optional(),
  SAFEDEPLOY_ENV_BRANCH: z.string().min(1).default("main"),
  SAFEDEPLOY_FORGE: z.enum(["github", "git"], { message: "must be github or git" }).default("git"),
  SAFEDEPLOY_TOKENS: z.string().min(1).optional(),
  SAFEDEPLOY_DRY_RUN: flag.default(false),
  GATEWAY_HOST: z.string().min(1).default("127.0.0.1"),
  GATEWAY_PORT: port.default(8080),
  HEALTH_HOST: z.string().min(1).default("127.0.0.1"),
  HEALTH_PORT: port.default(0),
  SAFEDEPLOY_SUBJECT_ROOT: z
    .string()
    .regex(/^[a-z][a-z0-9_-]*$/, { message: "must be one lowercase subject token" })
    .default("sd"),
  SAFEDEPLOY_STREAM_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, { message: "must be letters, digits, _ or -" })
    .default(""),
  SAFEDEPLOY_POLL_INTERVAL: z
    .string()
    .default("30s")
    .refine((text) => (parseDuration(text) ?? 0) > 0, {
      message: "must be a positive duration such as 30s or 1m",
    }),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` })
    .default("info"),
});

export type LogLevel = (typeof LOG_LEVELS)[number];

/** Validated configuration; durations also given in milliseconds. */
export interface Config {
  readonly natsServers: readonly string[];
  readonly databaseUrl: string | undefined;
  readonly prometheusUrl: string;
  readonly catalogPath: string;
  readonly home: string;
  readonly envRepo: string | undefined;
  readonly envBranch: string;
  readonly forge: "github" | "git";
  readonly tokensFile: string | undefined;
  readonly dryRun: boolean;
  readonly gateway: { readonly host: string; readonly port: number };
  readonly health: { readonly host: string; readonly port: number };
  readonly pollInterval: string;
  readonly pollIntervalMs: number;
  readonly logLevel: LogLevel;
  /** Subject root and stream/bucket prefix: lets several deployments (or tests) share a server. */
  readonly namespace: { readonly root: string; readonly prefix: string };
}

/** Invalid configuration: the message names every bad variable and why, all at once. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly { variable: string; message: string }[];
  constructor(problems: readonly { variable: string; message: string }[]) {
    super(
      `invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n")}`,
    );
    this.problems = problems;
  }
}

function problemsOf(error: z.ZodError): { variable: string; message: string }[] {
  return error.issues.map((issue) => ({
    variable: String(issue.path[0] ?? "(environment)"),
    message: issue.message,
  }));
}

/** Empty strings count as unset, as shells and compose files often leave them. */
function present(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "",
    ),
  );
}

/** Reads and validates the environment; throws {@link ConfigError} naming every bad variable. */
export function loadConfig(env: Env): Config {
  const parsed = EnvSchema.safeParse(present(env));
  if (!parsed.success) throw new ConfigError(problemsOf(parsed.error));
  const e = parsed.data;
  return {
    natsServers: e.NATS_URL,
    databaseUrl: e.DATABASE_URL,
    prometheusUrl: e.PROMETHEUS_URL,
    catalogPath: e.SAFEDEPLOY_CATALOG,
    home: e.SAFEDEPLOY_HOME,
    envRepo: e.SAFEDEPLOY_ENV_REPO,
    envBranch: e.SAFEDEPLOY_ENV_BRANCH,
    forge: e.SAFEDEPLOY_FORGE,
    tokensFile: e.SAFEDEPLOY_TOKENS,
    dryRun: e.SAFEDEPLOY_DRY_RUN,
    gateway: { host: e.GATEWAY_HOST, port: e.GATEWAY_PORT },
    health: { host: e.HEALTH_HOST, port: e.HEALTH_PORT },
    pollInterval: e.SAFEDEPLOY_POLL_INTERVAL,
    pollIntervalMs: parseDuration(e.SAFEDEPLOY_POLL_INTERVAL) ?? 30_000,
    logLevel: e.LOG_LEVEL,
    namespace: { root: e.SAFEDEPLOY_SUBJECT_ROOT, prefix: e.SAFEDEPLOY_STREAM_PREFIX },
  };
}

/** Git and forge credentials: read only by the git actuator, never logged. */
export interface GitCredentials {
  readonly githubToken: string | undefined;
  readonly githubApiUrl: string;
  readonly githubRepository: string | undefined;
}

const CredentialsSchema = z.object({
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_API_URL: url(["http:", "https:"]).default("https://api.github.com"),
  GITHUB_REPOSITORY: z
    .string()
    .regex(/^[\w.-]+\/[\w.-]+$/, { message: "must be owner/name" })
    .optional(),
});

/**
 * Reads the forge credentials. Kept apart from {@link loadConfig} so that only the process that
 * needs them (the git actuator) ever holds them in memory.
 */
export function loadGitCredentials(env: Env): GitCredentials {
  const parsed = CredentialsSchema.safeParse(present(env));
  if (!parsed.success) throw new ConfigError(problemsOf(parsed.error));
  return {
    githubToken: parsed.data.GITHUB_TOKEN,
    githubApiUrl: parsed.data.GITHUB_API_URL,
    githubRepository: parsed.data.GITHUB_REPOSITORY,
  };
}

/** Removes the password from a connection URL, for logs. */
export function redactUrl(text: string): string {
  try {
    const parsed = new URL(text);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return text;
  }
}

/** The configuration with secrets masked, fit for a startup log line. */
export function redactConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    natsServers: config.natsServers.map(redactUrl),
    databaseUrl: config.databaseUrl === undefined ? undefined : redactUrl(config.databaseUrl),
    envRepo: config.envRepo === undefined ? undefined : redactUrl(config.envRepo),
  };
}
