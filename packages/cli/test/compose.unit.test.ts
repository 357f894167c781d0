import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import {
  PG_PASSWORD_VARIABLES,
  composeSecretsFile,
  natsPasswordVariables,
} from "../src/commands/compose-secrets.js";
import { SERVICES } from "../src/stack/stack.js";

/*
 * No Docker engine here (and no `docker compose`): docker-compose.yml is parsed and held to what
 * the issue asks of it. Interpolation (`${VAR:?}`) is resolved with a generated secrets file.
 */
const root = join(import.meta.dirname, "..", "..", "..");
const text = readFileSync(join(root, "docker-compose.yml"), "utf8");

const Service = z.object({
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string().nullable()).optional(),
  ports: z.array(z.string()).optional(),
  volumes: z.array(z.string()).optional(),
  depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
});
const Compose = z.object({ services: z.record(z.string(), Service) });

/** Compose's `${NAME:?msg}`, `${NAME:-default}` and `${NAME}` against `vars`. */
function interpolate(source: string, vars: Readonly<Record<string, string>>): string {
  return source.replace(
    // Linear: each group is a character class bounded by a different delimiter.
    // eslint-disable-next-line security/detect-unsafe-regex
    /\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}/g,
    (_, name: string, kind?: string, rest?: string) => {
      const value = vars[name];
      if (value !== undefined && value !== "") return value;
      if (kind === "?") throw new Error(`${name} is required: ${rest ?? ""}`);
      return kind === "-" ? (rest ?? "") : "";
    },
  );
}

function secrets(): Record<string, string> {
  return Object.fromEntries(
    composeSecretsFile()
      .split("\n")
      .filter((line) => /^[A-Z]/.test(line))
      .map((line) => line.split("=", 2) as [string, string]),
  );
}

const vars: Record<string, string> = { ...secrets(), GITHUB_TOKEN: "ghp_composeSecretToken" };
const compose = Compose.parse(parse(interpolate(text, vars), { merge: true }));
const services = compose.services;
const serviceEnv = (name: string) => services[name]?.environment ?? {};

describe("docker-compose.yml", () => {
  it("holds no literal password: every secret is a variable of the compose-secrets file", () => {
    expect(text).not.toMatch(/PASSWORD:\s+[^$\s]/);
    expect(text).not.toMatch(/:\/\/[\w-]+:[^$@\s]+@/);
    expect(() => interpolate(text, {})).toThrow(/required/);
    for (const name of [...natsPasswordVariables(), ...PG_PASSWORD_VARIABLES]) {
      expect(text, name).toContain(`\${${name}:?`);
    }
  });

  it("publishes the gateway's port and nothing else (no NATS, PostgreSQL or Prometheus port)", () => {
    const published = Object.entries(services).filter(([, s]) => (s.ports ?? []).length > 0);
    expect(published.map(([name]) => name)).toEqual(["gateway"]);
  });

  it("runs nats with the generated permissions and every user's password", () => {
    const nats = services.nats!;
    expect(nats.command).toEqual(expect.arrayContaining(["-c", "/etc/nats/permissions.conf"]));
    expect(nats.volumes).toContain("./deploy/nats/permissions.conf:/etc/nats/permissions.conf:ro");
    expect(Object.keys(serviceEnv("nats")).sort()).toEqual(natsPasswordVariables().sort());
  });

  it("provisions once as the provisioner, before any service starts", () => {
    const provision = services.provision!;
    expect(provision.command).toEqual(["packages/cli/bin/safedeploy.js", "provision"]);
    expect(serviceEnv("provision").NATS_URL).toBe(
      `nats://provisioner:${vars.SAFEDEPLOY_NATS_PROVISIONER_PASSWORD}@nats:4222`,
    );
    for (const name of SERVICES) {
      expect(services[name]?.depends_on?.provision?.condition, name).toBe(
        "service_completed_successfully",
      );
    }
  });

  it("connects every service as its own NATS user, holding no other user's password", () => {
    for (const name of SERVICES) {
      const variable = `SAFEDEPLOY_NATS_${name.toUpperCase().replace(/-/g, "_")}_PASSWORD`;
      const env = serviceEnv(name);
      expect(env.NATS_URL, name).toBe(`nats://${name}:${vars[variable]}@nats:4222`);
      const others = Object.entries(vars).filter(([key]) => key !== variable);
      const blob = JSON.stringify(env);
      for (const [key, value] of others) {
        if (name === "audit" && /PG_(AUDIT|MIGRATOR)/.test(key)) continue;
        if (name === "gateway" && key === "SAFEDEPLOY_PG_GATEWAY_PASSWORD") continue;
        if (name === "git-actuator" && key === "GITHUB_TOKEN") continue;
        expect(blob.includes(value), `${name} holds ${key}`).toBe(false);
      }
    }
  });

  it("gives PostgreSQL the role script and audit and gateway their own roles", () => {
    expect(services.postgres?.volumes).toContain(
      "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-init-roles.sh:ro",
    );
    for (const variable of PG_PASSWORD_VARIABLES.slice(1)) {
      expect(serviceEnv("postgres")[variable], variable).toBe(vars[variable]);
    }
    expect(serviceEnv("audit").DATABASE_URL).toMatch(/^postgres:\/\/safedeploy_audit:/);
    expect(serviceEnv("audit").SAFEDEPLOY_AUDIT_MIGRATOR_URL).toMatch(
      /^postgres:\/\/safedeploy_migrator:/,
    );
    expect(serviceEnv("gateway").DATABASE_URL).toMatch(/^postgres:\/\/safedeploy_gateway:/);
    const withDatabase = SERVICES.filter((name) => serviceEnv(name).DATABASE_URL !== undefined);
    expect(withDatabase).toEqual(["audit", "gateway"]);
  });

  it("hands Git and forge credentials to the git actuator alone", () => {
    for (const name of Object.keys(services)) {
      const env = serviceEnv(name);
      const git = Object.keys(env).filter((key) => /^GITHUB_|^SAFEDEPLOY_ENV_REPO$/.test(key));
      if (name === "git-actuator") expect(env.GITHUB_TOKEN).toBe("ghp_composeSecretToken");
      else expect(git, name).toEqual([]);
    }
  });
});

describe("safedeploy generate compose-secrets", () => {
  it("draws a fresh password per variable, fit for URLs and nats-server variables", () => {
    const first = secrets();
    const second = secrets();
    expect(Object.keys(first)).toEqual([...natsPasswordVariables(), ...PG_PASSWORD_VARIABLES]);
    expect(natsPasswordVariables()).toContain("SAFEDEPLOY_NATS_PROVISIONER_PASSWORD");
    for (const [name, value] of Object.entries(first)) {
      expect(value, name).toMatch(/^p[0-9a-f]{48}$/);
      expect(second[name]).not.toBe(value);
    }
    expect(new Set(Object.values(first)).size).toBe(Object.keys(first).length);
  });
});
