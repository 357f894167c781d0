import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  loadConfig,
  loadGitCredentials,
  pickConfig,
  redactConfig,
} from "@safedeploy/runtime";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies the contract's defaults", () => {
    expect(loadConfig({})).toMatchObject({
      natsServers: ["nats://127.0.0.1:4222"],
      databaseUrl: undefined,
      prometheusUrl: "http://127.0.0.1:9090",
      catalogPath: "./catalog",
      home: "./.safedeploy",
      envRepo: undefined,
      envBranch: "main",
      forge: "git",
      tokensFile: undefined,
      gateway: { host: "127.0.0.1", port: 8080 },
      health: { host: "127.0.0.1", port: 0 },
      pollInterval: "30s",
      pollIntervalMs: 30_000,
      logLevel: "info",
      dryRun: false,
      namespace: { root: "sd", prefix: "" },
    });
  });

  it.each([
    ["NATS_URL", "tls://a:4222", { natsServers: ["tls://a:4222"] }],
    ["DATABASE_URL", "postgres://db:5432/sd", { databaseUrl: "postgres://db:5432/sd" }],
    ["PROMETHEUS_URL", "https://prom.example", { prometheusUrl: "https://prom.example" }],
    ["SAFEDEPLOY_CATALOG", "/etc/sd/catalog.yaml", { catalogPath: "/etc/sd/catalog.yaml" }],
    ["SAFEDEPLOY_HOME", "/var/lib/sd", { home: "/var/lib/sd" }],
    [
      "SAFEDEPLOY_ENV_REPO",
      "git@github.com:acme/env.git",
      { envRepo: "git@github.com:acme/env.git" },
    ],
    ["SAFEDEPLOY_ENV_BRANCH", "trunk", { envBranch: "trunk" }],
    ["SAFEDEPLOY_FORGE", "github", { forge: "github" }],
    ["SAFEDEPLOY_TOKENS", "/etc/sd/tokens.yaml", { tokensFile: "/etc/sd/tokens.yaml" }],
    ["GATEWAY_HOST", "0.0.0.0", { gateway: { host: "0.0.0.0", port: 8080 } }],
    ["GATEWAY_PORT", "9000", { gateway: { host: "127.0.0.1", port: 9000 } }],
    ["HEALTH_HOST", "::1", { health: { host: "::1", port: 0 } }],
    ["HEALTH_PORT", "9464", { health: { host: "127.0.0.1", port: 9464 } }],
    ["SAFEDEPLOY_POLL_INTERVAL", "1m30s", { pollInterval: "1m30s", pollIntervalMs: 90_000 }],
    ["LOG_LEVEL", "debug", { logLevel: "debug" }],
    ["SAFEDEPLOY_DRY_RUN", "1", { dryRun: true }],
    ["SAFEDEPLOY_DRY_RUN", "true", { dryRun: true }],
    ["SAFEDEPLOY_DRY_RUN", "0", { dryRun: false }],
    ["SAFEDEPLOY_DRY_RUN", "false", { dryRun: false }],
  ])("reads %s=%s", (variable, value, expected) => {
    expect(loadConfig({ [variable]: value })).toMatchObject(expected);
  });

  it("parses a comma-separated server list", () => {
    expect(loadConfig({ NATS_URL: "nats://a:4222, nats://b:4222,," }).natsServers).toEqual([
      "nats://a:4222",
      "nats://b:4222",
    ]);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ DATABASE_URL: "", LOG_LEVEL: "", GATEWAY_PORT: "" })).toMatchObject({
      databaseUrl: undefined,
      logLevel: "info",
      gateway: { port: 8080 },
    });
  });

  it.each([
    ["NATS_URL", "http://wrong", /must be a URL/],
    ["NATS_URL", "nats://a:4222,not a url", /^entry 2 must be a URL/],
    ["NATS_URL", ",", /needs at least one server/],
    ["DATABASE_URL", "mysql://db/sd", /must be a URL \(postgres:, postgresql:\)/],
    ["PROMETHEUS_URL", "prometheus:9090", /must be a URL/],
    ["SAFEDEPLOY_FORGE", "gitlab", /must be github or git/],
    ["GATEWAY_PORT", "eighty", /must be a port number/],
    ["GATEWAY_PORT", "1e3", /must be a port number/],
    ["GATEWAY_PORT", "70000", /between 0 and 65535/],
    ["HEALTH_PORT", "-1", /must be a port number/],
    ["SAFEDEPLOY_POLL_INTERVAL", "often", /positive duration/],
    ["SAFEDEPLOY_POLL_INTERVAL", "0s", /positive duration/],
    ["SAFEDEPLOY_POLL_INTERVAL", "1.5m", /positive duration/],
    ["LOG_LEVEL", "loud", /must be one of fatal, error, warn, info, debug, trace, silent/],
    ["SAFEDEPLOY_DRY_RUN", "yes", /must be 1, 0, true or false/],
    ["SAFEDEPLOY_SUBJECT_ROOT", "a.b", /one lowercase subject token/],
    ["SAFEDEPLOY_STREAM_PREFIX", "a b", /letters, digits/],
  ])("refuses %s=%j, naming it", (variable, value, reason) => {
    const error = configError(() => loadConfig({ [variable]: value }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]?.variable).toBe(variable);
    expect(error.problems[0]?.message).toMatch(reason);
    expect(error.message).toContain(`${variable}: `);
  });

  it("names every bad variable at once", () => {
    const error = configError(() =>
      loadConfig({
        NATS_URL: "http://wrong",
        DATABASE_URL: "mysql://x",
        GATEWAY_PORT: "99999",
        SAFEDEPLOY_FORGE: "gitlab",
        SAFEDEPLOY_POLL_INTERVAL: "often",
        LOG_LEVEL: "loud",
        SAFEDEPLOY_DRY_RUN: "maybe",
      }),
    );
    expect(error.name).toBe("ConfigError");
    expect(error.problems.map((p) => p.variable).sort()).toEqual([
      "DATABASE_URL",
      "GATEWAY_PORT",
      "LOG_LEVEL",
      "NATS_URL",
      "SAFEDEPLOY_DRY_RUN",
      "SAFEDEPLOY_FORGE",
      "SAFEDEPLOY_POLL_INTERVAL",
    ]);
    expect(error.message.split("\n")).toHaveLength(8);
    expect(error.message).toMatch(/^invalid configuration:\n {2}\w+: /);
    expect(error.message).toMatch(/GATEWAY_PORT: must be between 0 and 65535/);
  });

  it("never quotes a refused value, which may hold a secret", () => {
    const error = configError(() =>
      loadConfig({
        DATABASE_URL: "mysql://app:hunter2@db/sd",
        NATS_URL: "nats://ok:4222,http://user:s3cret@nats:4222",
      }),
    );
    const shown = `${error.message} ${JSON.stringify(error.problems)}`;
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain("s3cret");
  });

  it("ignores the forge credentials, which only loadGitCredentials reads", () => {
    const config = loadConfig({ GITHUB_TOKEN: "ghp_x", GITHUB_REPOSITORY: "bad repo" });
    expect(JSON.stringify(config)).not.toContain("ghp_x");
    expect(config).not.toHaveProperty("githubToken");
  });
});

describe("pickConfig and redactConfig", () => {
  it("picks only the part a component reads", () => {
    const part = pickConfig(loadConfig({}), "prometheusUrl", "pollIntervalMs");
    expect(part).toEqual({ prometheusUrl: "http://127.0.0.1:9090", pollIntervalMs: 30_000 });
  });

  it("masks credentials wherever a value holds one", () => {
    const config = loadConfig({
      NATS_URL: "nats://svc:natspass@n1:4222,nats://s3cr3ttoken@n2:4222",
      DATABASE_URL: "postgres://app:hunter2@db:5432/sd?sslmode=require&password=again",
      SAFEDEPLOY_ENV_REPO: "https://bot:ghp_secret@github.com/acme/env.git",
    });
    const redacted = redactConfig(config);
    const shown = JSON.stringify(redacted);
    for (const secret of ["natspass", "s3cr3ttoken", "hunter2", "again", "ghp_secret"]) {
      expect(shown).not.toContain(secret);
    }
    expect(redacted.natsServers).toEqual(["nats://svc:***@n1:4222", "nats://***@n2:4222"]);
    expect(redacted.databaseUrl).toBe("postgres://app:***@db:5432/sd?sslmode=require&password=***");
    expect(redacted.envRepo).toBe("https://bot:***@github.com/acme/env.git");
    // Values without credentials are left exactly as written.
    expect(redacted.prometheusUrl).toBe("http://127.0.0.1:9090");
    expect(redacted.gateway).toEqual(config.gateway);
    expect(redactConfig(pickConfig(config, "databaseUrl"))).toEqual({
      databaseUrl: "postgres://app:***@db:5432/sd?sslmode=require&password=***",
    });
  });
});

describe("loadGitCredentials", () => {
  it("reads and validates the forge credentials", () => {
    const credentials = loadGitCredentials({
      GITHUB_TOKEN: "ghp_x",
      GITHUB_REPOSITORY: "acme/env",
    });
    expect(credentials).toEqual({
      githubToken: "ghp_x",
      githubApiUrl: "https://api.github.com",
      githubRepository: "acme/env",
    });
    expect(loadGitCredentials({})).toEqual({
      githubToken: undefined,
      githubApiUrl: "https://api.github.com",
      githubRepository: undefined,
    });
  });

  it("names every bad or missing credential, never its value", () => {
    const error = configError(() =>
      loadGitCredentials({
        SAFEDEPLOY_FORGE: "github",
        GITHUB_API_URL: "api.github.com",
        GITHUB_REPOSITORY: "not a repo",
      }),
    );
    expect(error.problems).toEqual([
      { variable: "GITHUB_API_URL", message: "must be a URL (http:, https:)" },
      { variable: "GITHUB_REPOSITORY", message: "must be owner/name" },
      {
        variable: "GITHUB_TOKEN",
        message:
          "is required when SAFEDEPLOY_FORGE is github (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID)",
      },
    ]);
    expect(error.message).not.toContain("not a repo");
  });

  it("masks the token when serialised or inspected", () => {
    const credentials = loadGitCredentials({ GITHUB_TOKEN: "ghp_abcdef" });
    expect(credentials.githubToken).toBe("ghp_abcdef");
    expect(JSON.stringify({ credentials })).not.toContain("ghp_abcdef");
    expect(JSON.parse(JSON.stringify(credentials))).toMatchObject({ githubToken: "***" });
    expect(inspect(credentials)).not.toContain("ghp_abcdef");
    expect(Object.isFrozen(credentials)).toBe(true);
  });

  const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n";

  it("accepts a GitHub App instead of a token, with the key inline or in a file", () => {
    const inline = loadGitCredentials({
      SAFEDEPLOY_FORGE: "github",
      GITHUB_REPOSITORY: "acme/env",
      GITHUB_APP_ID: "123",
      GITHUB_APP_PRIVATE_KEY: pem.replace(/\n/g, "\\n"),
      GITHUB_APP_INSTALLATION_ID: "456",
    });
    expect(inline.githubToken).toBeUndefined();
    expect(inline.githubApp).toEqual({ appId: "123", privateKey: pem, installationId: "456" });
    const dir = mkdtempSync(join(tmpdir(), "sd-key-"));
    const file = join(dir, "app.pem");
    writeFileSync(file, pem);
    try {
      const fromFile = loadGitCredentials({
        SAFEDEPLOY_FORGE: "github",
        GITHUB_REPOSITORY: "acme/env",
        GITHUB_APP_ID: "123",
        GITHUB_APP_PRIVATE_KEY_FILE: file,
        GITHUB_APP_INSTALLATION_ID: "456",
      });
      expect(fromFile.githubApp?.privateKey).toBe(pem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("wants the whole App triple, a readable key file, and never quotes the key", () => {
    const partial = configError(() =>
      loadGitCredentials({
        SAFEDEPLOY_FORGE: "github",
        GITHUB_REPOSITORY: "acme/env",
        GITHUB_APP_ID: "1",
      }),
    );
    expect(partial.problems).toEqual([
      {
        variable: "GITHUB_APP_PRIVATE_KEY",
        message: "is required with the other GitHub App variables",
      },
      {
        variable: "GITHUB_APP_INSTALLATION_ID",
        message: "is required with the other GitHub App variables",
      },
    ]);
    const missing = configError(() =>
      loadGitCredentials({
        GITHUB_APP_ID: "1",
        GITHUB_APP_PRIVATE_KEY_FILE: "/nonexistent/key.pem",
        GITHUB_APP_INSTALLATION_ID: "2",
      }),
    );
    expect(missing.problems).toEqual([
      { variable: "GITHUB_APP_PRIVATE_KEY_FILE", message: "cannot be read" },
    ]);
    const notPem = configError(() =>
      loadGitCredentials({
        GITHUB_APP_ID: "1",
        GITHUB_APP_PRIVATE_KEY: "hunter2-secret",
        GITHUB_APP_INSTALLATION_ID: "2",
      }),
    );
    expect(notPem.problems).toEqual([
      { variable: "GITHUB_APP_PRIVATE_KEY", message: "must be a PEM private key" },
    ]);
    expect(notPem.message).not.toContain("hunter2");
  });

  it("masks the App private key when serialised or inspected", () => {
    const credentials = loadGitCredentials({
      GITHUB_APP_ID: "1",
      GITHUB_APP_PRIVATE_KEY: pem,
      GITHUB_APP_INSTALLATION_ID: "2",
    });
    expect(credentials.githubApp?.privateKey).toBe(pem);
    expect(JSON.stringify(credentials)).not.toContain("MIIEvQIBADANBg");
    expect(JSON.parse(JSON.stringify(credentials))).toMatchObject({
      githubApp: { appId: "1", privateKey: "***", installationId: "2" },
    });
    expect(inspect(credentials)).not.toContain("MIIEvQIBADANBg");
  });
});
