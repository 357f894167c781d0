import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadGitCredentials, redactConfig } from "@safedeploy/runtime";

describe("loadConfig", () => {
  it("applies the contract's defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      natsServers: ["nats://127.0.0.1:4222"],
      databaseUrl: undefined,
      prometheusUrl: "http://127.0.0.1:9090",
      catalogPath: "./catalog",
      home: "./.safedeploy",
      envBranch: "main",
      forge: "git",
      gateway: { host: "127.0.0.1", port: 8080 },
      health: { host: "127.0.0.1", port: 0 },
      pollInterval: "30s",
      pollIntervalMs: 30_000,
      logLevel: "info",
      dryRun: false,
    });
  });

  it("parses a comma-separated server list and flags", () => {
    const config = loadConfig({
      NATS_URL: "nats://a:4222, nats://b:4222,",
      SAFEDEPLOY_DRY_RUN: "1",
      SAFEDEPLOY_POLL_INTERVAL: "1m30s",
      GATEWAY_PORT: "9000",
    });
    expect(config.natsServers).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(config.dryRun).toBe(true);
    expect(config.pollIntervalMs).toBe(90_000);
    expect(config.gateway.port).toBe(9000);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ DATABASE_URL: "", LOG_LEVEL: "" }).logLevel).toBe("info");
  });

  it("names every bad variable at once", () => {
    let caught: unknown;
    try {
      loadConfig({
        NATS_URL: "http://wrong",
        DATABASE_URL: "mysql://x",
        GATEWAY_PORT: "99999",
        SAFEDEPLOY_FORGE: "gitlab",
        SAFEDEPLOY_POLL_INTERVAL: "often",
        LOG_LEVEL: "loud",
        SAFEDEPLOY_DRY_RUN: "maybe",
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.map((p) => p.variable).sort();
    expect(problems).toEqual([
      "DATABASE_URL",
      "GATEWAY_PORT",
      "LOG_LEVEL",
      "NATS_URL",
      "SAFEDEPLOY_DRY_RUN",
      "SAFEDEPLOY_FORGE",
      "SAFEDEPLOY_POLL_INTERVAL",
    ]);
    expect((caught as Error).message).toMatch(/GATEWAY_PORT: must be between 0 and 65535/);
  });

  it("redacts passwords from URLs it would log", () => {
    const config = loadConfig({
      DATABASE_URL: "postgres://app:hunter2@db:5432/sd",
      SAFEDEPLOY_ENV_REPO: "https://bot:ghp_secret@github.com/acme/env.git",
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain("ghp_secret");
    expect(shown).toContain("postgres://app:***@db:5432/sd");
  });
});

describe("loadGitCredentials", () => {
  it("reads forge credentials only when asked, validating them", () => {
    expect(loadConfig({ GITHUB_TOKEN: "ghp_x" })).not.toHaveProperty("githubToken");
    expect(loadGitCredentials({ GITHUB_TOKEN: "ghp_x", GITHUB_REPOSITORY: "acme/env" })).toEqual({
      githubToken: "ghp_x",
      githubApiUrl: "https://api.github.com",
      githubRepository: "acme/env",
    });
    expect(() => loadGitCredentials({ GITHUB_REPOSITORY: "not a repo" })).toThrow(
      /GITHUB_REPOSITORY/,
    );
  });
});
