// A release train through the real control plane: the release-train, policy, proposal and git
// actuator services over real NATS, a real environment repo, real health endpoints and a real
// Prometheus scraping an exporter whose traffic the test controls. Three services are promoted;
// after the train completed, one of them starts failing; every process (Prometheus included) is
// restarted before the follow-up is due; the follow-up attributes the regression to that step,
// blocks the service's gate (a failed release guard), and its revert (approved by a person)
// touches its path only and clears the guard.
import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceDefinition, ServiceHandle } from "@safedeploy/runtime";
import type { Envelope, TrainView } from "@safedeploy/schema";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import {
  deploymentManifest,
  createTestBus,
  createTestEnvRepo,
  git,
  policyYaml,
  readStream,
  serviceYaml,
  startPrometheus,
  startTrafficExporter,
  testServiceEnv,
  waitUntil,
  yamlDocuments,
} from "@safedeploy/testing";
import type { PrivatePrometheus, TestBus, TrafficExporter } from "@safedeploy/testing";

const exec = promisify(execFile);
const SERVICES = ["search", "basket", "orders"] as const;
const HEALTHY = { rps: 40, errorRatio: 0 };

const catalog = () =>
  yamlDocuments([
    policyYaml("  requireCanary: false\n  noData: allow\n  approvals: { required: 1 }\n"),
    ...SERVICES.map((name) => serviceYaml(name, { window: "10m" })),
  ]);

let root: string;
let remote: string;
let harness: TestBus;
let exporter: TrafficExporter;
let prometheus: PrivatePrometheus;
let healthServer: ReturnType<typeof createServer>;
let healthPort: number;
let env: Record<string, string>;
let services: ServiceHandle[] = [];
let merging: ReturnType<typeof setInterval>;

async function startAll(): Promise<void> {
  const definitions: ServiceDefinition[] = [
    policyService,
    proposalService,
    createGitActuatorService({ env }),
    createReleaseTrainService({ tickMs: 200, leaseMs: 5_000 }),
  ];
  for (const definition of definitions) services.push(await startService(definition, { env }));
}

async function stopAll(): Promise<void> {
  for (const service of services.reverse()) await service.shutdown("test");
  services = [];
}

/** What a reviewer does with each promotion branch the actuator pushes: merge it into main. */
async function mergePromotions(): Promise<void> {
  const events = await readStream(harness.bus, "GOVERNANCE");
  for (const event of events) {
    if (event.type !== "governance.action-completed") continue;
    if (event.data.kind !== "promote-release" || event.data.dryRun) continue;
    const main = await git(remote, ["rev-parse", "main"]);
    const { commit } = event.data;
    const ancestor = (a: string, b: string) =>
      exec("git", ["merge-base", "--is-ancestor", a, b], { cwd: remote }).then(
        () => true,
        () => false,
      );
    if (await ancestor(commit, main)) continue; // merged already
    // A fast-forward only, as a reviewer's merge button would (never drops what main has).
    if (!(await ancestor(main, commit))) continue;
    await git(remote, ["update-ref", "refs/heads/main", commit, main]);
  }
}

async function status(trainId: string): Promise<TrainView> {
  const reply = await requestCommand(harness.bus, "train.status", { trainId });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

async function waitForTrain(trainId: string, done: (t: TrainView) => boolean, ms = 45_000) {
  let last: TrainView | undefined;
  await waitUntil(
    async () => {
      last = await status(trainId);
      return done(last);
    },
    ms,
    () => `train ${trainId}: ${JSON.stringify(last, null, 1)}`,
  );
  return last!;
}

beforeAll(async () => {
  const repo = await createTestEnvRepo("train-e2e");
  ({ root, remote } = repo);
  await repo.commit("init", { "README.md": "prod\n" });
  await repo.commit(
    "prod at v1",
    Object.fromEntries(
      SERVICES.map((s) => [`envs/prod/${s}/deployment.yaml`, deploymentManifest(s, "v1")]),
    ),
  );
  await writeFile(join(root, "catalog.yaml"), catalog());

  healthServer = createServer((_request, response) => {
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ status: "ok" }));
  });
  await new Promise<void>((resolve) => healthServer.listen(0, "127.0.0.1", resolve));
  healthPort = (healthServer.address() as AddressInfo).port;

  exporter = await startTrafficExporter(Object.fromEntries(SERVICES.map((s) => [s, HEALTHY])));
  prometheus = await startPrometheus({ scrape: [{ jobName: "shop", targets: [exporter.target] }] });
  harness = await createTestBus();
  await provision(harness.bus);
  env = testServiceEnv(harness, {
    PROMETHEUS_URL: prometheus.url,
    SAFEDEPLOY_CATALOG: join(root, "catalog.yaml"),
    SAFEDEPLOY_ENV_REPO: remote,
    SAFEDEPLOY_ENV_BRANCH: "main",
    SAFEDEPLOY_FORGE: "git",
    SAFEDEPLOY_HOME: join(root, "home"),
  });
  await startAll();
  merging = setInterval(() => void mergePromotions().catch(() => undefined), 250);
  // A baseline of healthy traffic before anything is deployed.
  await new Promise((resolve) => setTimeout(resolve, 6_000));
}, 60_000);

afterAll(async () => {
  clearInterval(merging);
  await stopAll();
  await harness.cleanup();
  await prometheus.dispose();
  await exporter.close();
  await new Promise<void>((resolve) =>
    healthServer.close(() => {
      resolve();
    }),
  );
  await rm(root, { recursive: true, force: true });
});

describe("release train end to end", () => {
  it("promotes in order, then a follow-up after every restart attributes a regression to its step, blocks it and reverts its path only", async () => {
    const reply = await requestCommand(harness.bus, "train.start", {
      train: {
        apiVersion: "safedeploy.dev/v1",
        kind: "ReleaseTrain",
        metadata: { name: "shop-2026-11" },
        spec: {
          steps: SERVICES.map((service) => ({
            service,
            image: `shop/${service}:v2`,
            guardWindow: "3s",
            checks: [
              {
                http: `http://127.0.0.1:${healthPort}/${service}`,
                expect: { status: 200, json: { "$.status": "ok" } },
                severity: "fatal" as const,
              },
            ],
            regression: { maxErrorRatioIncrease: 3 },
          })),
          finalChecks: [],
          followUps: ["12s"],
        },
      },
      dryRun: false,
      actor: "alice",
    });
    if (!reply.ok) throw new Error(reply.error.message);
    const trainId = reply.result.id;
    const done = await waitForTrain(trainId, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps.map((s) => s.service)).toEqual([...SERVICES]);
    const regressions = done.steps.map((s) =>
      (s.evidence as { type: string; regressed?: boolean }[]).find((e) => e.type === "regression"),
    );
    expect(regressions.map((r) => r?.regressed)).toEqual([false, false, false]);

    // basket (step 2) starts failing after the train; then every process restarts.
    exporter.setTraffic("basket", { rps: 40, errorRatio: 0.4 });
    await stopAll();
    await prometheus.stop();
    await prometheus.start();
    await startAll();

    const followed = await waitForTrain(
      trainId,
      (t) => t.followUps[0]?.phase !== "scheduled",
      40_000,
    );
    expect(followed.followUps[0]).toMatchObject({ phase: "failed", attributedStep: 1 });
    const revert = (await waitForTrain(trainId, (t) => t.revert !== null)).revert!;
    expect(revert.service).toBe("basket");

    const governance = await readStream(harness.bus, "GOVERNANCE");
    const guard = governance.find(
      (e): e is Envelope<"governance.guard-failed"> =>
        e.type === "governance.guard-failed" && e.service === "basket",
    );
    expect(guard?.data).toMatchObject({ train: "shop-2026-11", trainId, step: 1 });
    const gate = await requestCommand(harness.bus, "gate.query", { service: "basket" });
    expect(gate.ok && gate.result.allowed).toBe(false);
    expect(gate.ok && gate.result.reasons.map((r) => r.code)).toContain("release-guard-failed");

    const approved = await requestCommand(harness.bus, "proposal.approve", {
      proposalId: revert.proposalId,
      by: "bob",
      reason: "basket regressed after the train",
    });
    expect(approved.ok).toBe(true);
    await waitUntil(
      async () =>
        (await readStream(harness.bus, "GOVERNANCE")).some(
          (e) =>
            // The approved revert itself, not the dry-run preview the proposal service asked for.
            e.type === "governance.action-completed" &&
            e.data.proposalId === revert.proposalId &&
            !e.data.dryRun,
        ),
      30_000,
      () => "the revert was not executed",
    );
    const branch = `safedeploy/${revert.proposalId}`;
    const changed = (await git(remote, ["diff", "--name-only", "main", branch])).split("\n");
    expect(changed).toEqual(["envs/prod/basket/deployment.yaml"]);
    const reverted = await git(remote, ["show", `${branch}:envs/prod/basket/deployment.yaml`]);
    expect(reverted).toContain("image: shop/basket:v1");
    // The executed revert clears the guard: the gate no longer names it.
    await waitUntil(
      async () => {
        const after = await requestCommand(harness.bus, "gate.query", { service: "basket" });
        return after.ok && !after.result.reasons.some((r) => r.code === "release-guard-failed");
      },
      15_000,
      () => "the executed revert did not clear basket's guard",
    );
  }, 150_000);
});
