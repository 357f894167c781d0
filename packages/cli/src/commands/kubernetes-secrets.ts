import { createHash, randomBytes } from "node:crypto";
import { access, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_NAMESPACE, servicePermissions } from "@safedeploy/schema";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";
import { PG_PASSWORD_VARIABLES, randomPassword } from "./compose-secrets.js";

/** Where the overlays of deploy/kubernetes expect the files, and what the control plane reaches. */
interface KubernetesSecretsInput {
  /** NATS server URL(s) without credentials, comma-separated. */
  readonly nats: string;
  /** PostgreSQL URL without credentials: host, port, database and parameters. */
  readonly postgres: string;
}

/** The database roles of deploy/postgres/init-roles.sh, by who connects with them. */
const PG_ROLES = {
  migrate: { role: "safedeploy_migrator", variable: "SAFEDEPLOY_PG_MIGRATOR_PASSWORD" },
  audit: { role: "safedeploy_audit", variable: "SAFEDEPLOY_PG_AUDIT_PASSWORD" },
  gateway: { role: "safedeploy_gateway", variable: "SAFEDEPLOY_PG_GATEWAY_PASSWORD" },
} as const;

function withUser(text: string, user: string, password: string): string {
  const url = new URL(text);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  return url.toString().replace(/\/$/, "");
}

function natsUrlFor(servers: string, user: string, password: string): string {
  return servers
    .split(",")
    .map((server) => withUser(server.trim(), user, password))
    .join(",");
}

const envFile = (comment: string, entries: Readonly<Record<string, string>>) =>
  [`# ${comment}`, ...Object.entries(entries).map(([name, value]) => `${name}=${value}`), ""].join(
    "\n",
  );

/**
 * The password-bearing env files the kustomize overlays turn into Secrets, one per holder: a
 * `<user>.env` per NATS user of the generated permissions (its own `NATS_URL`, and
 * `DATABASE_URL` for audit and gateway), `migrate.env` (the schema owner), and for servers the
 * dev overlay runs itself `nats-server.env` (every user's password variable, which
 * permissions.conf references) and `postgres.env` (what init-roles.sh reads). Pure: `password`
 * supplies each fresh password.
 */
function kubernetesSecretFiles(
  input: KubernetesSecretsInput,
  password: () => string = randomPassword,
): Record<string, string> {
  const pg = Object.fromEntries(PG_PASSWORD_VARIABLES.map((name) => [name, password()]));
  const databaseUrl = (holder: keyof typeof PG_ROLES) =>
    withUser(input.postgres, PG_ROLES[holder].role, pg[PG_ROLES[holder].variable] ?? "");
  const files: Record<string, string> = {};
  const natsPasswords: Record<string, string> = {};
  for (const { user, passwordVariable } of servicePermissions(DEFAULT_NAMESPACE)) {
    const secret = password();
    natsPasswords[passwordVariable] = secret;
    const entries: Record<string, string> = { NATS_URL: natsUrlFor(input.nats, user, secret) };
    if (user === "audit" || user === "gateway") entries.DATABASE_URL = databaseUrl(user);
    files[`${user}.env`] = envFile(`NATS user ${user}: the Secret safedeploy-${user}.`, entries);
  }
  files["migrate.env"] = envFile("The schema owner, for the migration Job alone.", {
    DATABASE_URL: databaseUrl("migrate"),
  });
  files["nats-server.env"] = envFile(
    "Every NATS user's password, as permissions.conf references them (the NATS server's alone).",
    natsPasswords,
  );
  files["postgres.env"] = envFile("PostgreSQL's superuser and the roles of init-roles.sh.", {
    POSTGRES_PASSWORD: pg.SAFEDEPLOY_PG_ADMIN_PASSWORD ?? "",
    SAFEDEPLOY_PG_MIGRATOR_PASSWORD: pg.SAFEDEPLOY_PG_MIGRATOR_PASSWORD ?? "",
    SAFEDEPLOY_PG_AUDIT_PASSWORD: pg.SAFEDEPLOY_PG_AUDIT_PASSWORD ?? "",
    SAFEDEPLOY_PG_GATEWAY_PASSWORD: pg.SAFEDEPLOY_PG_GATEWAY_PASSWORD ?? "",
  });
  return files;
}

/** The git actuator's settings and credentials, for the operator to fill in (never replaced). */
const GIT_TEMPLATE = `# Git and forge credentials: the Secret safedeploy-git-credentials (the git actuator alone).
# Fill in the environment repo; for pull requests set SAFEDEPLOY_FORGE=github and either
# GITHUB_TOKEN or the GitHub App triple (the private key with its newlines written as \\n).
SAFEDEPLOY_ENV_REPO=
SAFEDEPLOY_ENV_BRANCH=main
SAFEDEPLOY_FORGE=git
GITHUB_REPOSITORY=
GITHUB_TOKEN=
GITHUB_APP_ID=
GITHUB_APP_INSTALLATION_ID=
GITHUB_APP_PRIVATE_KEY=
`;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function checkUrl(text: string, protocols: readonly string[], option: string): void {
  for (const part of text.split(",")) {
    let url: URL;
    try {
      url = new URL(part.trim());
    } catch {
      throw new UsageError(`${option} must be a URL (${protocols.join(", ")})`);
    }
    if (!protocols.includes(url.protocol)) {
      throw new UsageError(`${option} must be a URL (${protocols.join(", ")})`);
    }
    if (url.username !== "" || url.password !== "") {
      throw new UsageError(`${option} must not carry credentials: they are generated`);
    }
  }
}

const USAGE = `Usage: safedeploy kubernetes-secrets --out DIR [--nats URL] [--postgres URL] [--force]

Writes the files the kustomize overlays of deploy/kubernetes turn into Secrets (DIR is
the overlay's secrets/ folder, mode 0700, files 0600; keep them out of version control):
one <user>.env per NATS user of the generated permissions (deploy/nats/permissions.conf)
with its own NATS_URL, DATABASE_URL for audit and gateway only, migrate.env (the schema
owner, for the migration Job), nats-server.env and postgres.env (the passwords the dev
overlay's servers start with; in production, give them to your NATS and PostgreSQL),
git.env (the git actuator's settings and credentials, for you to fill in) and
tokens.yaml (one admin API token; the token is printed once, only its sha256 is kept).

--nats (default nats://nats:4222) and --postgres (default
postgres://postgres:5432/safedeploy) are the servers without credentials. Existing
password files are not replaced unless --force; git.env and tokens.yaml never are.
Exit 0 written, 1 files exist, 2 usage error.`;

/** `safedeploy kubernetes-secrets`: random credentials for the Kubernetes overlays. */
export const kubernetesSecrets: Command = {
  name: "kubernetes-secrets",
  summary: "write the Secret files of the Kubernetes overlays (random passwords, tokens)",
  usage: USAGE,
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        out: { type: "string" },
        nats: { type: "string", default: "nats://nats:4222" },
        postgres: { type: "string", default: "postgres://postgres:5432/safedeploy" },
        force: { type: "boolean", default: false },
      },
    });
    if (positionals.length > 0 || values.out === undefined) {
      throw new UsageError("kubernetes-secrets needs --out DIR and no positional argument");
    }
    checkUrl(values.nats, ["nats:", "tls:", "ws:", "wss:"], "--nats");
    checkUrl(values.postgres, ["postgres:", "postgresql:"], "--postgres");
    const dir = io.cwd === undefined ? values.out : resolve(io.cwd, values.out);
    const files = kubernetesSecretFiles({ nats: values.nats, postgres: values.postgres });
    // All or nothing: the servers' passwords must match those in the users' URLs.
    const present = await Promise.all(Object.keys(files).map((name) => exists(join(dir, name))));
    if (!values.force && present.some(Boolean)) {
      io.stderr(`${values.out} holds passwords already: not replacing them (--force to)\n`);
      return EXIT.negative;
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text, { mode: 0o600 });
    }
    if (!(await exists(join(dir, "git.env")))) {
      await writeFile(join(dir, "git.env"), GIT_TEMPLATE, { mode: 0o600 });
    }
    if (!(await exists(join(dir, "tokens.yaml")))) {
      const token = `sd_${randomBytes(24).toString("hex")}`;
      const sha = createHash("sha256").update(token).digest("hex");
      await writeFile(
        join(dir, "tokens.yaml"),
        `- name: admin\n  role: admin\n  sha256: ${sha}\n`,
        {
          mode: 0o600,
        },
      );
      io.stdout(`admin API token (kept only as its sha256 in tokens.yaml): ${token}\n`);
    }
    io.stderr(`wrote ${values.out} (fill in git.env before applying)\n`);
    return EXIT.ok;
  },
};
