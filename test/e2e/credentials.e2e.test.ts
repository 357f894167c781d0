import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { demoCatalog } from "@safedeploy/demo";
import { spawnCollecting } from "@safedeploy/testing";

/*
 * Issue 14, item 1: `safedeploy up` started with GITHUB_TOKEN set hands it to the git actuator
 * alone. The real binary runs the whole stack (embedded NATS and PostgreSQL, every service, the git
 * actuator on a local environment repo); then the environment of every child process is read from
 * /proc/<pid>/environ, as the kernel holds it.
 */

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const BIN = join(root, "packages", "cli", "bin", "safedeploy.js");
const TOKEN = "ghp_credentialsE2eSecret0123456789";
const APP_KEY = "-----BEGIN PRIVATE KEY-----\\nnot-a-key\\n-----END PRIVATE KEY-----";

async function until(probe: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The environment of a live process, as NAME=value pairs. */
function environOf(pid: number): Map<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
  return new Map(
    pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
}

/** What a child of `up` is: its service's name from `services/<name>/dist/main.js`, or its binary. */
function nameOf(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const service = argv
    .map((arg) => /services\/([a-z-]+)\/dist\/main\.js$/.exec(arg)?.[1])
    .find(Boolean);
  return service ?? argv[0]?.split("/").at(-1) ?? String(pid);
}

async function envRepo(dir: string): Promise<string> {
  const work = join(dir, "env-work");
  const bare = join(dir, "env.git");
  const git = (cwd: string, ...args: string[]) => exec("git", args, { cwd });
  await exec("git", ["init", "-q", "-b", "main", work]);
  writeFileSync(join(work, "README.md"), "environment\n");
  await git(work, "add", ".");
  await git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init");
  await exec("git", ["clone", "-q", "--bare", work, bare]);
  return bare;
}

describe("safedeploy up hands Git and forge credentials to the git actuator alone", () => {
  it("GITHUB_* and SAFEDEPLOY_ENV_REPO are in the git actuator's /proc/<pid>/environ and no other child's", async () => {
    await exec(
      process.execPath,
      [join(root, "node_modules/typescript/bin/tsc"), "-b", "packages/cli"],
      {
        cwd: root,
      },
    );
    const home = mkdtempSync(join(tmpdir(), "sd-credentials-"));
    const catalog = join(home, "catalog.yaml");
    writeFileSync(catalog, demoCatalog());
    const repo = await envRepo(home);
    const env: Record<string, string | undefined> = {
      ...process.env,
      SAFEDEPLOY_HOME: home,
      SAFEDEPLOY_CATALOG: catalog,
      SAFEDEPLOY_ENV_REPO: repo,
      GITHUB_TOKEN: TOKEN,
      GITHUB_APP_PRIVATE_KEY_UNUSED: APP_KEY,
      // Not a credential of any service: must not reach one either.
      UNRELATED_OPERATOR_SECRET: "operator-secret-value",
      LOG_LEVEL: "warn",
      PROMETHEUS_URL: "http://127.0.0.1:9",
      NO_COLOR: "1",
    };
    delete env.NATS_URL;
    delete env.DATABASE_URL;
    const { child, exited, output } = spawnCollecting(process.execPath, [BIN, "up"], env);
    try {
      await until(
        () => output().includes("SafeDeploy is up"),
        180_000,
        () => `up:\n${output()}`,
      );
      const { stdout } = await exec("ps", ["-o", "pid=", "--ppid", String(child.pid)]);
      const pids = stdout
        .split("\n")
        .map((line) => Number(line.trim()))
        .filter((pid) => pid > 0);
      const children = new Map(pids.map((pid) => [nameOf(pid), environOf(pid)]));
      expect([...children.keys()].sort()).toEqual(
        [
          "audit",
          "budget",
          "collector",
          "gateway",
          "git-actuator",
          "incident",
          "nats-server",
          "notifier",
          "policy",
          "proposal",
          "release-train",
        ].sort(),
      );
      const holding = (value: string) =>
        [...children.entries()]
          .filter(([, environ]) => [...environ.values()].some((v) => v.includes(value)))
          .map(([name]) => name);
      expect(holding(TOKEN)).toEqual(["git-actuator"]);
      expect(children.get("git-actuator")?.get("GITHUB_TOKEN")).toBe(TOKEN);
      expect(holding(repo)).toEqual(["git-actuator"]);
      expect(holding("operator-secret-value")).toEqual([]);
      for (const [name, environ] of children) {
        const git = [...environ.keys()].filter((key) => key.startsWith("GITHUB_"));
        if (name !== "git-actuator") expect(git, name).toEqual([]);
      }
      // The connection string reaches only the two services that use PostgreSQL.
      const database = [...children.entries()]
        .filter(([, environ]) => environ.has("DATABASE_URL"))
        .map(([name]) => name)
        .sort();
      expect(database).toEqual(["audit", "gateway"]);
      expect(output()).not.toContain(TOKEN);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    }
  }, 240_000);
});
