import { passwordVariable } from "@safedeploy/schema";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * What a process needs from the operator's environment to run at all: search path, home, locale,
 * time zone, temporary directory, Node's and TLS's trust settings, proxies. Nothing else of the
 * parent's environment reaches a child of `up` unless named for it below.
 */
const PROCESS_BASICS = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TMPDIR",
  "TEMP",
  "TMP",
  "NODE_OPTIONS",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NO_COLOR",
  "FORCE_COLOR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
]);

/**
 * Git and forge credentials and the environment repo (whose URL may carry a token): the git
 * actuator's alone (CONTRACT.md; `loadGitCredentials` and `runGit` read these, ssh the SSH ones).
 */
export const GIT_ACTUATOR_VARIABLES: readonly string[] = [
  "SAFEDEPLOY_ENV_REPO",
  "SAFEDEPLOY_ENV_BRANCH",
  "SAFEDEPLOY_FORGE",
  "GITHUB_TOKEN",
  "GITHUB_API_URL",
  "GITHUB_REPOSITORY",
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_PRIVATE_KEY_FILE",
  "GITHUB_APP_INSTALLATION_ID",
  "SSH_AUTH_SOCK",
  "GIT_SSH",
  "GIT_SSH_COMMAND",
  "GIT_ASKPASS",
];

/** Variables that hold or lead to a secret and go to their owners only, never by namespace. */
function isCredential(name: string): boolean {
  return (
    GIT_ACTUATOR_VARIABLES.includes(name) ||
    name.startsWith("GITHUB_") ||
    name === "DATABASE_URL" ||
    OWNED_CREDENTIALS.has(name) ||
    /^SAFEDEPLOY_[A-Z0-9_]*(URL|PASSWORD|TOKEN|SECRET|KEY)(_FILE)?$/.test(name)
  );
}

/** Credentials of one service by name (beyond DATABASE_URL and the git actuator's). */
const OWN_CREDENTIALS: Readonly<Record<string, readonly string[]>> = {
  // The schema owner, with which the audit service runs the migrations at start.
  audit: ["SAFEDEPLOY_AUDIT_MIGRATOR_URL"],
  // Where the webhook signing keys and Slack webhook URLs of the catalog's notifiers live.
  notifier: ["SAFEDEPLOY_NOTIFIER_SECRETS_DIR"],
  // The Slack signing secret: only the gateway verifies Slack's requests.
  gateway: ["SAFEDEPLOY_SLACK_SIGNING_SECRET_FILE"],
};

/** Every variable some service owns: never handed out by namespace. */
const OWNED_CREDENTIALS = new Set(Object.values(OWN_CREDENTIALS).flat());

/** The services that hold a database connection string (the audit writer and the read API). */
const DATABASE_USERS = new Set(["audit", "gateway"]);

/** The environment of a server `up` starts (nats-server, prometheus): the process basics only. */
export function serverEnvironment(env: Env): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (PROCESS_BASICS.has(name) || name.startsWith("LC_"))) {
      picked[name] = value;
    }
  }
  return picked;
}

/** `nats://host` with `user:password@` put in, for a service that connects as its NATS user. */
function withCredentials(urls: string, user: string, password: string): string {
  return urls
    .split(",")
    .map((server) => {
      try {
        const url = new URL(server.trim());
        if (url.username !== "") return server.trim();
        url.username = encodeURIComponent(user);
        url.password = encodeURIComponent(password);
        return url.toString().replace(/\/$/, "");
      } catch {
        return server.trim();
      }
    })
    .join(",");
}

/**
 * The environment of service `name`, allowlisted: the process basics, SafeDeploy's own shared
 * configuration (`SAFEDEPLOY_*`, `GATEWAY_*`, `HEALTH_*`, `NATS_URL`, `PROMETHEUS_URL`,
 * `LOG_LEVEL`), and only its own credentials: `DATABASE_URL` for audit and gateway, the Git and
 * forge variables for the git actuator, and, when `SAFEDEPLOY_NATS_<SERVICE>_PASSWORD` is set, its
 * own NATS user in `NATS_URL` (the password variables themselves reach no service).
 */
export function serviceEnvironment(name: string, env: Env): Record<string, string> {
  const picked = serverEnvironment(env);
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || isCredential(key)) continue;
    if (
      /^(SAFEDEPLOY|GATEWAY|HEALTH)_/.test(key) ||
      ["NATS_URL", "PROMETHEUS_URL", "LOG_LEVEL"].includes(key)
    ) {
      picked[key] = value;
    }
  }
  if (DATABASE_USERS.has(name) && env.DATABASE_URL !== undefined) {
    picked.DATABASE_URL = env.DATABASE_URL;
  }
  for (const key of OWN_CREDENTIALS[name] ?? []) {
    const value = env[key];
    if (value !== undefined) picked[key] = value;
  }
  if (name === "git-actuator") {
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) continue;
      if (GIT_ACTUATOR_VARIABLES.includes(key) || key.startsWith("GITHUB_")) picked[key] = value;
    }
  }
  const password = env[passwordVariable(name)] ?? "";
  if (password !== "" && picked.NATS_URL !== undefined) {
    picked.NATS_URL = withCredentials(picked.NATS_URL, name, password);
  }
  return picked;
}
