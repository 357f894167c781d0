// `safedeploy import sloth|openslo` on the public examples of both projects (test/fixtures/import),
// the output checked by the real `safedeploy validate`; then a catalog directory holding the Sloth
// and OpenSLO files themselves, served by the real policy and gateway services on real NATS and
// PostgreSQL (gateway on loopback): the imported services have a gate.
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { runCli } from "@safedeploy/cli";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { auditService } from "@safedeploy/service-audit";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { policyService } from "@safedeploy/service-policy";
import { createTestBus, createTestDatabase, testServiceEnv } from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";

const FIXTURES = new URL("../fixtures/import", import.meta.url).pathname;
const TOKEN = "import-viewer-token";

let root: string;

async function cli(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: {},
    cwd: root,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "import-e2e-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("safedeploy import", () => {
  it("writes Sloth services that the real validate accepts, naming what it ignored", async () => {
    const run = await cli(
      "import",
      "sloth",
      join(FIXTURES, "sloth-getting-started.yml"),
      join(FIXTURES, "sloth-kubernetes-apiserver.yml"),
      "--owner",
      "team-platform",
      "--rollback-path",
      "apps/{service}/prod",
      "--out",
      "sloth-out",
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("sloth-getting-started.yml#0: slo_plugins: ignored:");
    expect(run.stderr).toContain("imported 3 SLO(s) into 2 service(s)");
    expect((await readdir(join(root, "sloth-out"))).sort()).toEqual([
      "k8s-apiserver.yaml",
      "myservice.yaml",
    ]);
    const text = await readFile(join(root, "sloth-out", "k8s-apiserver.yaml"), "utf8");
    expect(text).toContain("owner: team-platform");
    expect(text).toContain("path: apps/k8s-apiserver/prod");
    const validated = await cli("validate", "sloth-out");
    expect(validated.stderr).toBe("");
    expect(validated).toMatchObject({
      code: 0,
      stdout: "sloth-out: valid (2 services, 0 policies, 0 release trains)\n",
    });
  });

  it("prints OpenSLO services on stdout that validate as they stand", async () => {
    const run = await cli(
      "import",
      "openslo",
      join(FIXTURES, "openslo-v1-prometheus.yaml"),
      "--strategy",
      "blue_green",
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("strategy: blue_green");
    await writeFile(join(root, "openslo-out.yaml"), run.stdout);
    expect((await cli("validate", "openslo-out.yaml")).code).toBe(0);
  });

  it("exits 1 when nothing could be imported, saying why with file and path", async () => {
    const run = await cli(
      "import",
      "openslo",
      join(FIXTURES, "openslo-ratio-timeslices.yaml"),
      join(FIXTURES, "openslo-readme-datadog.yaml"),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(
      "openslo-ratio-timeslices.yaml#0: spec.budgetingMethod: not imported:",
    );
    expect(run.stderr).toContain("nothing imported");
    expect((await cli("import", "sloth", join(FIXTURES, "openslo-v1-prometheus.yaml"))).code).toBe(
      1,
    );
    expect((await cli("import", "yaml", "x")).code).toBe(2);
  });

  it("validate reports an unmappable Sloth file in a catalog directory with file and path", async () => {
    await mkdir(join(root, "bad"), { recursive: true });
    await copyFile(join(FIXTURES, "sloth-raw-home-wifi.yml"), join(root, "bad", "wifi.yml"));
    const run = await cli("validate", "bad");
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("bad/wifi.yml#0: slos[0].sli.raw: cannot import:");
  });
});

describe("a catalog directory of Sloth and OpenSLO files, served", () => {
  let harness: TestBus;
  let database: TestDatabase;
  let gatewayUrl = "";
  const services: ServiceHandle[] = [];

  beforeAll(async () => {
    const catalog = join(root, "catalog");
    await mkdir(catalog, { recursive: true });
    await copyFile(join(FIXTURES, "sloth-getting-started.yml"), join(catalog, "sloth.yml"));
    await copyFile(join(FIXTURES, "openslo-v1-prometheus.yaml"), join(catalog, "openslo.yaml"));
    await writeFile(
      join(root, "tokens.yaml"),
      `- { name: vera, role: viewer, sha256: ${tokenHash(TOKEN)} }\n`,
    );
    harness = await createTestBus();
    await provision(harness.bus);
    database = await createTestDatabase();
    const env = testServiceEnv(harness, {
      DATABASE_URL: database.url,
      SAFEDEPLOY_CATALOG: catalog,
      SAFEDEPLOY_TOKENS: join(root, "tokens.yaml"),
      SAFEDEPLOY_HOME: join(root, "home"),
      GATEWAY_PORT: "0",
    });
    for (const definition of [
      auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }),
      policyService,
      createGatewayService({ onListening: (url) => (gatewayUrl = url) }),
    ]) {
      services.push(await startService(definition, { env }));
    }
  }, 60_000);

  afterAll(async () => {
    for (const service of services.reverse()) await service.shutdown("test");
    await harness.cleanup();
    await database.drop();
  });

  it("validate accepts it, and the policy service judges the imported services", async () => {
    expect((await cli("validate", "catalog")).stdout).toBe(
      "catalog: valid (2 services, 0 policies, 0 release trains)\n",
    );
    for (const service of ["myservice", "my-service"]) {
      const response = await fetch(`${gatewayUrl}/v1/services/${service}/gate`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(response.status).toBe(200);
      const gate = (await response.json()) as { verdict: string; reasons: { code: string }[] };
      // No evidence yet: unknown, never a pass; and no structural violation (a rollback path, a
      // canary, SLOs: all from the import), which would make it block.
      expect(gate.verdict).toBe("unknown");
      const codes = gate.reasons.map((r) => r.code);
      for (const code of ["no-slos", "no-rollback", "canary-required"])
        expect(codes).not.toContain(code);
    }
  });
});
