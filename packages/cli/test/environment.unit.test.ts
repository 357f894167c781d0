import { describe, expect, it } from "vitest";
import { serverEnvironment, serviceEnvironment } from "../src/stack/environment.js";
import { SERVICES } from "../src/stack/stack.js";

const operator = {
  PATH: "/usr/bin",
  HOME: "/home/op",
  LC_ALL: "C",
  NATS_URL: "nats://127.0.0.1:4222",
  DATABASE_URL: "postgres://app:pw@db/sd",
  SAFEDEPLOY_CATALOG: "/catalog",
  SAFEDEPLOY_POLL_INTERVAL: "5s",
  GATEWAY_RATE_LIMIT: "50",
  SAFEDEPLOY_ENV_REPO: "https://x-access-token:tok@github.com/o/env.git",
  SAFEDEPLOY_FORGE: "github",
  GITHUB_TOKEN: "ghp_secret",
  GITHUB_REPOSITORY: "o/env",
  SSH_AUTH_SOCK: "/tmp/agent.sock",
  SAFEDEPLOY_TOKEN: "cli-token",
  SAFEDEPLOY_AUDIT_MIGRATOR_URL: "postgres://owner:pw@db/sd",
  SAFEDEPLOY_NATS_BUDGET_PASSWORD: "pbudget",
  SAFEDEPLOY_NATS_PROVISIONER_PASSWORD: "pprov",
  AWS_SECRET_ACCESS_KEY: "aws",
};

describe("serviceEnvironment (what `up` gives each child)", () => {
  it("gives every service the process basics and the shared configuration", () => {
    for (const name of SERVICES) {
      const env = serviceEnvironment(name, operator);
      expect(env).toMatchObject({
        PATH: "/usr/bin",
        HOME: "/home/op",
        LC_ALL: "C",
        SAFEDEPLOY_CATALOG: "/catalog",
        SAFEDEPLOY_POLL_INTERVAL: "5s",
        GATEWAY_RATE_LIMIT: "50",
      });
      expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
      expect(env.SAFEDEPLOY_TOKEN).toBeUndefined();
      expect(env.SAFEDEPLOY_NATS_PROVISIONER_PASSWORD).toBeUndefined();
      expect(env.SAFEDEPLOY_NATS_BUDGET_PASSWORD).toBeUndefined();
    }
  });

  it("hands Git and forge credentials and the environment repo to the git actuator alone", () => {
    const git = ["SAFEDEPLOY_ENV_REPO", "SAFEDEPLOY_FORGE", "GITHUB_TOKEN", "GITHUB_REPOSITORY"];
    for (const name of SERVICES) {
      const env = serviceEnvironment(name, operator);
      for (const key of [...git, "SSH_AUTH_SOCK"]) {
        expect(env[key], `${name} ${key}`).toBe(
          name === "git-actuator" ? operator[key as "PATH"] : undefined,
        );
      }
    }
  });

  it("hands DATABASE_URL to audit and gateway only, the migrator URL to audit only", () => {
    const withDb = SERVICES.filter((name) => serviceEnvironment(name, operator).DATABASE_URL);
    expect(withDb).toEqual(["audit", "gateway"]);
    const migrator = SERVICES.filter(
      (name) => serviceEnvironment(name, operator).SAFEDEPLOY_AUDIT_MIGRATOR_URL,
    );
    expect(migrator).toEqual(["audit"]);
  });

  it("puts a service's own NATS user into its NATS_URL when its password is given", () => {
    expect(serviceEnvironment("budget", operator).NATS_URL).toBe(
      "nats://budget:pbudget@127.0.0.1:4222",
    );
    expect(serviceEnvironment("policy", operator).NATS_URL).toBe("nats://127.0.0.1:4222");
  });

  it("gives servers the process basics only", () => {
    expect(serverEnvironment(operator)).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/op",
      LC_ALL: "C",
    });
  });
});
