// `safedeploy release run|status` through the real gateway and the real release-train, policy,
// proposal and git-actuator services, with a real environment repo: the dry run prints the plan
// and the diffs and pushes nothing; the real run promotes both steps and exits 0; `status` then
// exports the release manifest.
import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import {
  deploymentManifest,
  createTestBus,
  createTestDatabase,
  createTestEnvRepo,
  policyYaml,
  serviceYaml,
  testServiceEnv,
  yamlDocuments,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase, TestEnvRepo } from "@safedeploy/testing";

const SERVICES = ["search", "basket"] as const;
/** search rolls out as a canary whose promote hook is a manifest edit (a label, here). */
const SEARCH_CANARY = `  deployment:
    strategy: canary
    canary:
      steps: [50, 100]
      bakeTime: 1s
      promoteHook: { manifest: { path: envs/prod/search, patch: { metadata: { labels: { track: stable } } } } }
`;
const TOKEN = "release-cli-token";
const catalog = yamlDocuments([
  policyYaml("  requireCanary: false\n  noData: allow\n"),
  ...SERVICES.map((name) =>
    serviceYaml(name, { sli: "rate", spec: name === "search" ? SEARCH_CANARY : "" }),
  ),
]);
const train = `apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: cli-train }
spec:
  steps:
    - { service: search, image: "shop/search:v2", guardWindow: 1s }
    # A manifest patch instead of an image: the actuator merges it into the workload.
    - { service: basket, patch: { spec: { replicas: 3 } }, guardWindow: 1s }
  followUps: []
`;

let repo: TestEnvRepo;
let root: string;
let harness: TestBus;
let database: TestDatabase;
let gatewayUrl = "";
const services: ServiceHandle[] = [];

async function cli(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: {
      SAFEDEPLOY_API: gatewayUrl,
      SAFEDEPLOY_TOKEN: TOKEN,
      SAFEDEPLOY_CATALOG: join(root, "catalog.yaml"),
    },
    cwd: root,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

const branches = async () => Object.keys(await repo.branches()).sort();

beforeAll(async () => {
  repo = await createTestEnvRepo();
  root = repo.root;
  await repo.commit(
    "prod at v1",
    Object.fromEntries(
      SERVICES.map((s) => [`envs/prod/${s}/deployment.yaml`, deploymentManifest(s, "v1")]),
    ),
  );
  await writeFile(join(root, "catalog.yaml"), catalog);
  await writeFile(join(root, "train.yaml"), train);
  await writeFile(
    join(root, "tokens.yaml"),
    `- { name: rel, role: approver, sha256: ${tokenHash(TOKEN)} }\n`,
  );

  harness = await createTestBus();
  await provision(harness.bus);
  database = await createTestDatabase();
  const env = testServiceEnv(harness, {
    DATABASE_URL: database.url,
    SAFEDEPLOY_CATALOG: join(root, "catalog.yaml"),
    SAFEDEPLOY_ENV_REPO: repo.remote,
    SAFEDEPLOY_HOME: join(root, "home"),
    SAFEDEPLOY_TOKENS: join(root, "tokens.yaml"),
    GATEWAY_PORT: "0",
  });
  for (const definition of [
    policyService,
    proposalService,
    createGitActuatorService({ env }),
    createReleaseTrainService({ tickMs: 200, leaseMs: 5_000 }),
    createGatewayService({ onListening: (url) => (gatewayUrl = url) }),
  ]) {
    services.push(await startService(definition, { env }));
  }
}, 60_000);

afterAll(async () => {
  for (const service of services.reverse()) await service.shutdown("test");
  await harness.cleanup();
  await database.drop();
  await repo.dispose();
});

describe("safedeploy release run|status", () => {
  it("a dry run prints the plan and each step's diff, and pushes nothing", async () => {
    const planned = await cli("release", "plan", "train.yaml");
    const run = await cli("release", "run", "train.yaml", "--dry-run");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // The same plan the plan command prints, then the progress, diffs and outcome.
    expect(run.stdout.startsWith(planned.stdout)).toBe(true);
    expect(run.stdout).toMatch(/started TRN-[0-9A-F]+ \(dry run\)/);
    expect(run.stdout).toContain("-          image: shop/search:v1");
    expect(run.stdout).toContain("+  replicas: 3");
    expect(run.stdout).toMatch(/--- step 1 search: promote hook diff \(not pushed\)\n/);
    expect(run.stdout).toContain("+    track: stable");
    expect(run.stdout).toContain("dry run: nothing pushed");
    expect(await branches()).toEqual([]);
  }, 60_000);

  it("a real run promotes the steps in order and exits 0; status exports the manifest", async () => {
    const run = await cli("release", "run", "train.yaml");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const id = /started (TRN-[0-9A-F]+)/.exec(run.stdout)?.[1];
    expect(id).toBeDefined();
    expect(await branches()).toEqual([
      `safedeploy/${id}-s1`,
      `safedeploy/${id}-s1-promote`,
      `safedeploy/${id}-s2`,
    ]);

    const status = await cli("release", "status", id!, "--json");
    expect(status.code).toBe(0);
    const view = JSON.parse(status.stdout) as {
      state: string;
      manifest: { promoted: { service: string; commit: string | null }[] };
    };
    expect(view.state).toBe("completed");
    expect(view.manifest.promoted.map((p) => p.service)).toEqual([...SERVICES]);
    for (const promoted of view.manifest.promoted)
      expect(promoted.commit).toMatch(/^[0-9a-f]{40}$/);
  }, 60_000);

  it("a failing warning check completes under the default (--fail-on-fatal) and halts under --halt-on warning", async () => {
    // search answers, but degraded: a warning-severity content check fails.
    const degraded = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end('{"status":"degraded"}');
    });
    await new Promise<void>((resolve) => degraded.listen(0, "127.0.0.1", resolve));
    const { port } = degraded.address() as AddressInfo;
    try {
      await writeFile(
        join(root, "warn.yaml"),
        `apiVersion: safedeploy.dev/v1
kind: ReleaseTrain
metadata: { name: cli-warn }
spec:
  steps:
    - service: search
      image: "shop/search:v3"
      guardWindow: 1s
      checks:
        - http: http://127.0.0.1:${port}/healthz
          expect: { json: { "$.status": "ok" } }
          severity: warning
    - { service: basket, image: "shop/basket:v3", guardWindow: 1s }
  followUps: []
`,
      );
      const lenient = await cli("release", "run", "warn.yaml", "--dry-run");
      expect(lenient.stderr).toBe("");
      expect(lenient.stdout).toMatch(/step 1 search: checked \([0-9a-f]+\): warning/);
      expect(lenient.stdout).toMatch(/release train cli-warn \(TRN-[0-9A-F]+\): completed/);
      expect(lenient.code).toBe(0);
      const explicit = await cli("release", "run", "warn.yaml", "--dry-run", "--fail-on-fatal");
      expect(explicit.code).toBe(0);

      const strict = await cli("release", "run", "warn.yaml", "--dry-run", "--halt-on", "warning");
      expect(strict.stderr).toBe("");
      expect(strict.stdout).toMatch(/started TRN-[0-9A-F]+ \(dry run, warnings halt\)/);
      expect(strict.stdout).toMatch(/cli-warn \(TRN-[0-9A-F]+\): halted: .*step 1 \(search\)/);
      expect(strict.stdout).not.toContain("step 2 basket: promoting");
      expect(strict.code).toBe(1);

      const contradictory = await cli(
        "release",
        "run",
        "warn.yaml",
        "--fail-on-fatal",
        "--halt-on",
        "warning",
      );
      expect(contradictory.code).toBe(2);
    } finally {
      await new Promise<void>((resolve) => {
        degraded.close(() => {
          resolve();
        });
      });
    }
  }, 60_000);
});
