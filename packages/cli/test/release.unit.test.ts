import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";

const repoRoot = new URL("../../..", import.meta.url).pathname;
const VALID = "test/fixtures/catalog/valid";

async function run(argv: string[], env: Record<string, string> = {}, cwd = repoRoot) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    cwd,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("safedeploy release plan", () => {
  it("plans a train-only manifest with the services of SAFEDEPLOY_CATALOG", async () => {
    const result = await run(["release", "plan", `${VALID}/train.yaml`], {
      SAFEDEPLOY_CATALOG: VALID,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("release train train-42: 2 steps\n");
    expect(result.stdout).toContain("  1. checkout: canary 10% → 50% → 100%, bake 10m each\n");
    expect(result.stdout).toContain(
      "     change:     image registry.example.com/shop/checkout:v1.6.0 → envs/prod/checkout\n",
    );
    expect(result.stdout).toContain("     guard:      10m, then check\n");
    expect(result.stdout).toContain(
      'GET http://checkout.internal/healthz: status 200, $.status = "ok", body contains "ready", within 500ms (fatal)',
    );
    expect(result.stdout).toContain("error ratio above 2 × the baseline (floor 0.1%)");
    expect(result.stdout).toContain("  follow-ups: +1h, +4h, +12h after the train finishes\n");
  });

  it("a catalog directory is its own source of services; --dry-run says nothing is pushed", async () => {
    const fromDir = await run(["release", "plan", VALID, "--dry-run"]);
    expect(fromDir.code).toBe(0);
    expect(fromDir.stdout).toMatch(/dry run: nothing pushed\n$/);
    const fromFile = await run(["release", "plan", `${VALID}/train.yaml`], {
      SAFEDEPLOY_CATALOG: VALID,
    });
    expect(fromDir.stdout.replace("dry run: nothing pushed\n", "")).toBe(fromFile.stdout);
  });

  it("--json prints the plan the service executes", async () => {
    const result = await run(["release", "plan", VALID, "--json"]);
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as {
      valid: boolean;
      plans: { train: string; steps: { service: string; guardWindowMs: number }[] }[];
    };
    expect(body.valid).toBe(true);
    expect(body.plans[0]?.steps.map((s) => [s.service, s.guardWindowMs])).toEqual([
      ["checkout", 600_000],
      ["cart", 600_000],
    ]);
  });

  it("exit 1 naming the problem: unknown service, no rollback path, no train, bad YAML", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-release-"));
    try {
      const train = (service: string) => `apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: t }
spec:
  steps:
    - { service: ${service}, image: "x:1" }
`;
      writeFileSync(join(dir, "unknown.yaml"), train("ghost"));
      const unknown = await run(["release", "plan", join(dir, "unknown.yaml")], {
        SAFEDEPLOY_CATALOG: VALID,
      });
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('step 1: service "ghost" is not in the catalog');
      const unknownJson = await run(["release", "plan", join(dir, "unknown.yaml"), "--json"], {
        SAFEDEPLOY_CATALOG: VALID,
      });
      expect(JSON.parse(unknownJson.stdout)).toEqual({
        valid: false,
        errors: [`${join(dir, "unknown.yaml")}: step 1: service "ghost" is not in the catalog`],
      });

      writeFileSync(
        join(dir, "norollback.yaml"),
        `${train("bare")}---
apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: bare, owner: team }
spec: { slos: [] }
`,
      );
      const bare = await run(["release", "plan", join(dir, "norollback.yaml")]);
      expect(bare.code).toBe(1);
      expect(bare.stderr).toContain('step 1: service "bare" has no rollback.path to change');

      const noTrain = await run(["release", "plan", `${VALID}/policy.yaml`]);
      expect(noTrain).toMatchObject({
        code: 1,
        stderr: expect.stringContaining("no ReleaseTrain document") as string,
      });

      writeFileSync(join(dir, "bad.yaml"), "kind: ReleaseTrain\nspec: [\n");
      expect((await run(["release", "plan", join(dir, "bad.yaml")])).code).toBe(1);

      const missingCatalog = await run(["release", "plan", join(dir, "unknown.yaml")], {
        SAFEDEPLOY_CATALOG: join(dir, "nowhere"),
      });
      expect(missingCatalog.code).toBe(1);
      expect(missingCatalog.stderr).toContain("the catalog");

      expect((await run(["release", "plan", join(dir, "absent.yaml")])).stderr).toContain(
        "cannot read the manifest",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exit 2 for usage: no subcommand, unknown subcommand, no MANIFEST", async () => {
    for (const argv of [
      ["release"],
      ["release", "frobnicate"],
      ["release", "toString"],
      ["release", "plan"],
    ]) {
      const result = await run(argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("safedeploy release plan MANIFEST");
    }
    const help = await run(["release", "--help"]);
    expect(help).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Usage: safedeploy release plan/) as string,
    });
  });
});

describe("safedeploy release: strategy hooks and the halt policy", () => {
  it("plan lists each step's hooks: canary promote and rollback, blue_green cutover, manifest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-release-hooks-"));
    try {
      writeFileSync(
        join(dir, "catalog.yaml"),
        `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: web, owner: team }
spec:
  slos: []
  rollback: { strategy: git-revert, path: envs/prod/web }
  deployment:
    strategy: canary
    canary:
      steps: [10, 100]
      bakeTime: 1m
      promoteHook: { http: { url: "http://hooks.internal/promote" } }
      rollbackHook: { manifest: { path: envs/prod/web/rollout.yaml, patch: { weight: 0 } } }
---
apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: api, owner: team }
spec:
  slos: []
  rollback: { strategy: git-revert, path: envs/prod/api }
  deployment:
    strategy: blue_green
    blueGreen: { cutoverHook: { http: { url: "http://hooks.internal/cutover", method: PUT } } }
---
apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: hooked }
spec:
  steps:
    - service: web
      image: "web:2"
      deployedWhen: { http: "http://web.internal/version", expect: { json: { "$.version": "2" } }, within: 15m }
    - { service: api, image: "api:2" }
`,
      );
      const result = await run(["release", "plan", join(dir, "catalog.yaml")]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(
        "     hooks:      promote POST http://hooks.internal/promote; rollback manifest patch weight of envs/prod/web/rollout.yaml (committed by the git actuator) (on halt)\n",
      );
      expect(result.stdout).toContain(
        "     hooks:      cutover PUT http://hooks.internal/cutover\n",
      );
      expect(result.stdout).toContain(
        '     deployed:   when GET http://web.internal/version answers status 200, $.version = "2" (polled for 15m, else halt)\n',
      );
      // The step without deployedWhen says its deploy time is the push, and how to do better.
      expect(result.stdout).toContain(
        "     deployed:   when the git actuator has pushed the change (declare deployedWhen if it must be merged or synced first)\n",
      );
      expect(result.stdout.match(/deployed: /g)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("run: --halt-on takes fatal or warning and contradicts no --fail-on-fatal; usage documents both", async () => {
    const bad = await run(["release", "run", `${VALID}/train.yaml`, "--halt-on", "sometimes"], {
      SAFEDEPLOY_CATALOG: VALID,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--halt-on takes fatal or warning, not "sometimes"');
    const both = await run(
      ["release", "run", `${VALID}/train.yaml`, "--fail-on-fatal", "--halt-on", "warning"],
      { SAFEDEPLOY_CATALOG: VALID },
    );
    expect(both.code).toBe(2);
    const help = await run(["release", "--help"]);
    expect(help.stdout).toContain("--fail-on-fatal");
    expect(help.stdout).toContain("--halt-on LEVEL");
  });
});
