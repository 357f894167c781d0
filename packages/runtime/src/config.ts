import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { Duration, parseDuration } from "@safedeploy/schema";
import { z } from "zod";
import { redactUrl } from "./secrets.js";

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

const port = z
  .string()
  .regex(/^\d{1,5}$/, { message: "must be a port number" })
  .transform(Number)
  .pipe(z.number().max(65_535, { message: "must be between 0 and 65535" }));

const flag = z
  .enum(["", "0", "1", "false", "true"], { message: "must be 1, 0, true or false" })
  .transform((text) => text === "1" || text === "true");

/**
 * The environment every service reads (CONTRACT.md, "Configuration"). Git credentials are not
 * here: only the git actuator reads them, through {@link loadGitCredentials}. Messages never quote
 * the value they refuse, since a value may hold a secret.
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
  SAFEDEPLOY_COLLECTOR_MODE: z
    .enum(["direct", "recorded"], { message: "must be direct or recorded" })
    .default("direct"),
  SAFEDEPLOY_SUBJECT_ROOT: z
    .string()
    .regex(/^[a-z][a-z0-9_-]*$/, { message: "must be one lowercase subject token" })
    .default("sd"),
  SAFEDEPLOY_STREAM_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, { message: "must be letters, digits, _ or -" })
    .default(""),
  SAFEDEPLOY_POLL_INTERVAL: Duration.default("30s"),
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
  /** Default SLI mode of SLOs that do not set `sli.mode`. */
  readonly collectorMode: "direct" | "recorded";
  /** Subject root and stream/bucket prefix: lets several deployments (or tests) share a server. */
  readonly namespace: { readonly root: string; readonly prefix: string };
}

/** One refused variable and why; never its value, which may be a secret. */
export interface ConfigProblem {
  readonly variable: string;
  readonly message: string;
}

/** Invalid configuration: the message names every bad variable and why, all at once. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(
      `invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n")}`,
    );
    this.problems = problems;
  }
}

function problemsOf(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => {
    const [variable, entry] = issue.path;
    // A list (NATS_URL) names the entry by position, not by value: it may carry credentials.
    const where = typeof entry === "number" ? `entry ${entry + 1} ` : "";
    return { variable: String(variable ?? "(environment)"), message: where + issue.message };
  });
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
    collectorMode: e.SAFEDEPLOY_COLLECTOR_MODE,
    namespace: { root: e.SAFEDEPLOY_SUBJECT_ROOT, prefix: e.SAFEDEPLOY_STREAM_PREFIX },
  };
}

/**
 * The part of the configuration one component reads, e.g.
 * `pickConfig(config, "prometheusUrl", "pollIntervalMs")`: its dependencies then say what it
 * needs, a test builds only that part, and logging it shows nothing else.
 */
export function pickConfig<K extends keyof Config>(
  config: Config,
  ...keys: readonly K[]
): Pick<Config, K> {
  return Object.fromEntries(keys.map((key) => [key, config[key]])) as Pick<Config, K>;
}

function redactValue(value: unknown): unknown {
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactValue);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(item)]));
  }
  return value;
}

/**
 * The configuration, or a part of it from {@link pickConfig}, with credentials masked wherever a
 * value holds one (`postgres://app:***@db/sd`, `nats://***@host:4222`): fit for a startup log line.
 */
export function redactConfig<C extends Partial<Config>>(config: C): C {
  return redactValue(config) as C;
}

/**
 * Git and forge credentials. Serialising or inspecting the object (a log line, an error's
 * context) shows the token and the App private key as `***`; only reading the fields gives them.
 */
export interface GitCredentials {
  readonly githubToken: string | undefined;
  readonly githubApiUrl: string;
  readonly githubRepository: string | undefined;
  /** GitHub App authentication (short-lived installation tokens), when all three are set. */
  readonly githubApp:
    | {
        readonly appId: string;
        /** PEM text, from `GITHUB_APP_PRIVATE_KEY` or the file `GITHUB_APP_PRIVATE_KEY_FILE`. */
        readonly privateKey: string;
        readonly installationId: string;
      }
    | undefined;
}

const numericId = z.string().regex(/^\d+$/, { message: "must be a number" });

const CredentialsSchema = z.object({
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_API_URL: url(["http:", "https:"]).default("https://api.github.com"),
  GITHUB_REPOSITORY: z
    .string()
    .regex(/^[\w.-]+\/[\w.-]+$/, { message: "must be owner/name" })
    .optional(),
  GITHUB_APP_ID: numericId.optional(),
  GITHUB_APP_PRIVATE_KEY: z
    .string()
    .transform((text) => text.replace(/\\n/g, "\n"))
    .pipe(
      z
        .string()
        .regex(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, { message: "must be a PEM private key" }),
    )
    .optional(),
  GITHUB_APP_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  GITHUB_APP_INSTALLATION_ID: numericId.optional(),
});

const APP_VARIABLES = [
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_INSTALLATION_ID",
] as const;

function readKeyFile(path: string): { key?: string; problem?: ConfigProblem } {
  try {
    // The operator names this file; reading it is the point.
    // eslint-disable-next-line security/detect-non-literal-fs-filename
    const key = readFileSync(path, "utf8");
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      return {
        problem: { variable: "GITHUB_APP_PRIVATE_KEY_FILE", message: "is not a PEM private key" },
      };
    }
    return { key };
  } catch {
    return { problem: { variable: "GITHUB_APP_PRIVATE_KEY_FILE", message: "cannot be read" } };
  }
}

/**
 * Reads the forge credentials (`GITHUB_TOKEN`, `GITHUB_API_URL`, `GITHUB_REPOSITORY`, and for a
 * GitHub App `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY` or `GITHUB_APP_PRIVATE_KEY_FILE`,
 * `GITHUB_APP_INSTALLATION_ID`). With `SAFEDEPLOY_FORGE=github` the repository is required, and
 * either the token or the whole App triple; an App triple is all-or-nothing.
 *
 * Kept apart from {@link loadConfig} on purpose (DESIGN.md, invariant 3: only the git actuator can
 * read Git credentials). `loadConfig` never looks at these variables, so the {@link Config} every
 * service holds, logs at start ({@link redactConfig}) and hands to its components cannot carry a
 * token, even where the variable happens to be set. The one service that calls this function holds
 * the secrets in a single place, and this object masks them when serialised.
 */
export function loadGitCredentials(env: Env): GitCredentials {
  const variables = present(env);
  const parsed = CredentialsSchema.safeParse(variables);
  const problems = parsed.success ? [] : problemsOf(parsed.error);
  if (
    variables.GITHUB_APP_PRIVATE_KEY !== undefined &&
    variables.GITHUB_APP_PRIVATE_KEY_FILE !== undefined
  ) {
    problems.push({
      variable: "GITHUB_APP_PRIVATE_KEY_FILE",
      message: "cannot be set together with GITHUB_APP_PRIVATE_KEY",
    });
  }
  let fileKey: string | undefined;
  if (variables.GITHUB_APP_PRIVATE_KEY_FILE !== undefined) {
    const read = readKeyFile(variables.GITHUB_APP_PRIVATE_KEY_FILE);
    if (read.problem !== undefined) problems.push(read.problem);
    fileKey = read.key;
  }
  const given = (name: (typeof APP_VARIABLES)[number]) =>
    variables[name] !== undefined ||
    (name === "GITHUB_APP_PRIVATE_KEY" && variables.GITHUB_APP_PRIVATE_KEY_FILE !== undefined);
  const appGiven = APP_VARIABLES.filter(given);
  if (appGiven.length > 0) {
    for (const variable of APP_VARIABLES) {
      if (!given(variable)) {
        problems.push({ variable, message: "is required with the other GitHub App variables" });
      }
    }
  }
  if (variables.SAFEDEPLOY_FORGE === "github") {
    if (variables.GITHUB_TOKEN === undefined && appGiven.length === 0) {
      problems.push({
        variable: "GITHUB_TOKEN",
        message:
          "is required when SAFEDEPLOY_FORGE is github (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID)",
      });
    }
    if (variables.GITHUB_REPOSITORY === undefined) {
      problems.push({
        variable: "GITHUB_REPOSITORY",
        message: "is required when SAFEDEPLOY_FORGE is github",
      });
    }
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const data = parsed.data;
  const privateKey = data.GITHUB_APP_PRIVATE_KEY ?? fileKey;
  const credentials: GitCredentials = {
    githubToken: data.GITHUB_TOKEN,
    githubApiUrl: data.GITHUB_API_URL,
    githubRepository: data.GITHUB_REPOSITORY,
    githubApp:
      data.GITHUB_APP_ID !== undefined &&
      privateKey !== undefined &&
      data.GITHUB_APP_INSTALLATION_ID !== undefined
        ? Object.freeze({
            appId: data.GITHUB_APP_ID,
            privateKey,
            installationId: data.GITHUB_APP_INSTALLATION_ID,
          })
        : undefined,
  };
  const masked = () => ({
    ...credentials,
    githubToken: credentials.githubToken === undefined ? undefined : "***",
    githubApp:
      credentials.githubApp === undefined
        ? undefined
        : { ...credentials.githubApp, privateKey: "***" },
  });
  Object.defineProperties(credentials, {
    toJSON: { value: masked },
    [inspect.custom]: { value: masked },
  });
  return Object.freeze(credentials);
}
