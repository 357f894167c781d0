import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createDemoEnvRepo, startDemoApp } from "@safedeploy/demo";
import { runCli } from "../src/cli.js";
import { findExecutable } from "../src/stack/tools.js";

const exec = promisify(execFile);
const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const counter = (metrics: string, code: "200" | "500") => {
  const line = metrics
    .split("\n")
    .find((l) => l.startsWith(`http_requests_total{service="checkout",code="${code}"} `));
  return Number(line?.split(" ")[1]);
};

describe("the demo app", () => {
  it("exports http_requests_total{service,code}; POST /admin/version v2 turns 80% of requests into 500s, v1 back to none", async () => {
    const app = await startDemoApp({ rps: 200 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const healthy = await (await fetch(`${app.url}/metrics`)).text();
      expect(counter(healthy, "200")).toBeGreaterThan(50);
      expect(counter(healthy, "500")).toBe(0);
      const flipped = await fetch(`${app.url}/admin/version`, {
        method: "POST",
        body: JSON.stringify({ version: "v2" }),
      });
      expect(await flipped.json()).toEqual({ version: "v2", errorRatio: 0.8 });
      const before = app.counts();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const bad = await (await fetch(`${app.url}/metrics`)).text();
      const errors = counter(bad, "500") - (before["500"] ?? 0);
      const ok = counter(bad, "200") - (before["200"] ?? 0);
      expect(errors / (errors + ok)).toBeCloseTo(0.8, 1);
      expect(bad).toContain('demo_app_info{service="checkout",version="v2"} 1');
      expect((await fetch(`${app.url}/admin/version`, { method: "POST", body: "{}" })).status).toBe(
        400,
      );
      app.setVersion("v1");
      const after = app.counts();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(app.counts()["500"]).toBe(after["500"]);
    } finally {
      await app.close();
    }
  });
});

describe("the demo environment repo", () => {
  it("is a bare remote whose main holds checkout's Argo Rollout at v1; a deploy of v2 is one commit touching only the rollout", async () => {
    const dir = tempDir("sd-demo-repo-");
    const repo = await createDemoEnvRepo(dir);
    const manifest = (await exec("git", ["show", `main:${repo.rolloutPath}`], { cwd: repo.remote }))
      .stdout;
    expect(manifest).toContain("kind: Rollout");
    expect(manifest).toContain("apiVersion: argoproj.io/v1alpha1");
    expect(manifest).toContain('image: "registry.example.com/shop/checkout:v1"');
    const sha = await repo.deploy("v2");
    const files = (
      await exec("git", ["show", "--name-only", "--format=", sha], { cwd: repo.remote })
    ).stdout;
    expect(files.trim()).toBe("envs/prod/checkout/rollout.yaml");
    expect((await repo.log()).split("\n")).toHaveLength(2);
    // Reopening keeps the history.
    const again = await createDemoEnvRepo(dir);
    expect(await again.log()).toContain("Deploy checkout v2");
    expect(await again.branches()).toEqual(["main"]);
  });
});

const tools = ["nats-server", "prometheus", "git"].every(
  (name) => findExecutable(name, process.env, ["/usr/bin"]) !== undefined,
);

// END TO END: the whole `safedeploy demo` (all services as processes, NATS, PGlite, Prometheus,
// the demo app and env repo), ~40 s on 2 cores. Skipped without nats-server or prometheus.
describe.skipIf(!tools)("safedeploy demo, end to end", () => {
  it("walks from a bad deploy to an approved rollback branch and exits 0, stopping everything", async () => {
    const home = tempDir("sd-demo-e2e-");
    let out = "";
    const env: Record<string, string | undefined> = {
      ...process.env,
      SAFEDEPLOY_HOME: home,
      NO_COLOR: "1",
    };
    for (const name of [
      "NATS_URL",
      "DATABASE_URL",
      "PROMETHEUS_URL",
      "SAFEDEPLOY_ENV_REPO",
      "GATEWAY_PORT",
    ]) {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
      delete env[name];
    }
    const started = Date.now();
    const code = await runCli({
      argv: ["demo"],
      env,
      cwd: home,
      stdout: (text) => (out += text),
      stderr: (text) => (out += text),
    });
    expect(code, out).toBe(0);
    expect(out).toMatch(/▶ deploying checkout v2 \(bad/);
    expect(out).toMatch(/checkout is (fast-burn|exhausted)/);
    expect(out).toMatch(/INC-\w+: detected/);
    const proposal = /(PRP-\w+): rollback-rollout, pending/.exec(out)?.[1];
    expect(proposal).toBeDefined();
    expect(out).toContain(`POST /v1/proposals/${proposal ?? ""}/approve → approved`);
    expect(out).toContain(`branch safedeploy/${proposal ?? ""} pushed`);
    expect(out).toContain('+          image: "registry.example.com/shop/checkout:v1"');
    // The branch is really in the bare repo, reverting only checkout's rollout.
    const remote = join(home, "demo", "envrepo", "env.git");
    const head = (
      await exec("git", ["show", `safedeploy/${proposal ?? ""}:envs/prod/checkout/rollout.yaml`], {
        cwd: remote,
      })
    ).stdout;
    expect(head).toContain("checkout:v1");
    expect(await readFile(join(home, "demo", "tokens.yaml"), "utf8")).toMatch(/role: approver/);
    expect(Date.now() - started).toBeLessThan(180_000);
  }, 240_000);
});
