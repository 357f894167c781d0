// Every path to production obeys the same governance (DESIGN.md invariant 9), end to end with the
// real policy, proposal, git-actuator and release-train services on real NATS, a bare environment
// repo and a real health endpoint:
//   - a train over a frozen service pushes nothing and halts naming the freeze;
//   - over a service whose policy requires two approvers it waits until a second person approves
//     (with `safedeploy proposals approve` semantics: the proposal.approve command), then promotes;
//   - a rejection halts it, nothing pushed;
//   - a failed guard (a fatal content check) blocks the service's gate until an approver clears it.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { CommandName, CommandRequest, CommandResult, TrainView } from "@safedeploy/schema";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import {
  createTestBus,
  createTestEnvRepo,
  deploymentManifest,
  policyYaml,
  serviceYaml,
  testServiceEnv,
  waitUntil,
  yamlDocuments,
} from "@safedeploy/testing";
import type { TestBus, TestEnvRepo } from "@safedeploy/testing";

const SERVICES = ["cart", "search", "payments"] as const;
let root = "";
let repo: TestEnvRepo;
let harness: TestBus;
let health: Server;
let healthUrl = "";
/** The services whose health endpoint says degraded. */
const degraded = new Set<string>();
const services: ServiceHandle[] = [];

async function command<C extends CommandName>(
  name: C,
  request: CommandRequest<C>,
): Promise<CommandResult<C>> {
  const reply = await requestCommand(harness.bus, name, request);
  if (!reply.ok) throw new Error(`${name}: ${reply.error.message}`);
  return reply.result;
}

const train = (name: string, steps: Partial<Record<(typeof SERVICES)[number], string>>) => ({
  apiVersion: "safedeploy.dev/v1" as const,
  kind: "ReleaseTrain" as const,
  metadata: { name },
  spec: {
    steps: Object.entries(steps).map(([service, version]) => ({
      service,
      image: `shop/${service}:${version}`,
      guardWindow: "1s",
      checks: [
        {
          http: `${healthUrl}/${service}/healthz`,
          expect: { status: 200, json: { "$.status": "ok" } },
          severity: "fatal" as const,
        },
      ],
    })),
    finalChecks: [],
    followUps: [],
  },
});

const start = (document: ReturnType<typeof train>) =>
  command("train.start", { train: document, dryRun: false, actor: "alice" });

async function waitForTrain(
  trainId: string,
  done: (view: TrainView) => boolean,
  timeoutMs = 30_000,
): Promise<TrainView> {
  let last: TrainView | undefined;
  await waitUntil(
    async () => {
      last = await command("train.status", { trainId });
      return done(last);
    },
    timeoutMs,
    () => `train ${trainId}: ${JSON.stringify(last, null, 1)}`,
  );
  return last!;
}

const branches = async () => Object.keys(await repo.branches());
const gate = (service: string) => command("gate.query", { service });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sd-release-governance-"));
  health = createServer((req, res) => {
    const service = (req.url ?? "").split("/")[1] ?? "";
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ status: degraded.has(service) ? "degraded" : "ok" }));
  });
  await new Promise<void>((resolve) => health.listen(0, "127.0.0.1", resolve));
  healthUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}`;
  repo = await createTestEnvRepo("release-governance");
  await repo.commit(
    "Bootstrap prod",
    Object.fromEntries(
      SERVICES.map((s) => [
        `envs/prod/${s}/deployment.yaml`,
        deploymentManifest(s, `shop/${s}:v1`),
      ]),
    ),
  );
  // No Prometheus here: the policy allows no-data, so only freezes, approvals and guards decide.
  const catalog = join(root, "catalog.yaml");
  await writeFile(
    catalog,
    yamlDocuments([
      policyYaml("  requireCanary: false\n  noData: allow\n  approvals: { required: 1 }\n"),
      serviceYaml("cart"),
      serviceYaml("search", { spec: "  policy: { approvals: { required: 2 } }\n" }),
      serviceYaml("payments"),
    ]),
  );
  harness = await createTestBus();
  await provision(harness.bus);
  const env = testServiceEnv(harness, {
    SAFEDEPLOY_CATALOG: catalog,
    SAFEDEPLOY_ENV_REPO: repo.remote,
    SAFEDEPLOY_FORGE: "git",
    SAFEDEPLOY_HOME: join(root, "home"),
    HEALTH_PORT: "0",
  });
  for (const definition of [
    policyService,
    proposalService,
    createGitActuatorService({ env }),
    createReleaseTrainService({ tickMs: 200, leaseMs: 5_000 }),
  ]) {
    services.push(await startService(definition, { env }));
  }
}, 60_000);

afterAll(async () => {
  for (const service of services.reverse()) await service.shutdown("test");
  await harness.cleanup();
  await repo.dispose();
  await new Promise((resolve) => health.close(resolve));
  if (root !== "") await rm(root, { recursive: true, force: true });
});

describe("release trains obey the same governance as proposals", () => {
  it("a train over a frozen service pushes nothing and halts naming the freeze", async () => {
    await command("freeze.create", {
      service: "cart",
      until: new Date(Date.now() + 3_600_000).toISOString(),
      reason: "Black Friday",
      actor: "root",
    });
    expect((await gate("cart")).verdict).toBe("block");
    const before = await branches();
    const started = await start(train("frozen", { cart: "v2" }));
    const done = await waitForTrain(started.id, (t) => t.state !== "running");
    expect(done.state).toBe("halted");
    expect(done.steps[0]?.phase).toBe("blocked");
    expect(done.reason).toMatch(/freeze-active/);
    expect(done.reason).toMatch(/Black Friday/);
    expect(done.steps[0]?.gate?.reasons.map((r) => r.code)).toEqual(["freeze-active"]);
    expect(await branches()).toEqual(before);
    await command("freeze.lift", { service: "cart", actor: "root", reason: "over" });
  });

  it("waits for a second approver where the policy requires two, then promotes", async () => {
    const started = await start(train("two-approvers", { search: "v2" }));
    const waiting = await waitForTrain(
      started.id,
      (t) => t.steps[0]?.phase === "awaiting-approval",
    );
    const proposalId = `${started.id}-s1`;
    expect(waiting.steps[0]?.approval).toMatchObject({
      proposalId,
      state: "pending",
      required: 2,
      approvals: ["alice"],
    });
    // Nothing is pushed while it waits.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await branches()).not.toContain(`safedeploy/${proposalId}`);
    // The starter approving again counts once.
    expect(
      await command("proposal.approve", { proposalId, by: "alice", reason: "again" }),
    ).toMatchObject({ state: "pending" });
    const approved = await command("proposal.approve", {
      proposalId,
      by: "bob",
      reason: "search v2 looks right",
    });
    expect(approved).toMatchObject({ state: "approved" });
    const done = await waitForTrain(started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(await branches()).toContain(`safedeploy/${proposalId}`);
  });

  it("a rejection halts the train, nothing pushed", async () => {
    const started = await start(train("rejected", { search: "v3" }));
    await waitForTrain(started.id, (t) => t.steps[0]?.phase === "awaiting-approval");
    const proposalId = `${started.id}-s1`;
    await command("proposal.reject", { proposalId, by: "carol", reason: "not during the sale" });
    const done = await waitForTrain(started.id, (t) => t.state !== "running");
    expect(done.state).toBe("halted");
    expect(done.reason).toMatch(/rejected by carol: not during the sale/);
    expect(await branches()).not.toContain(`safedeploy/${proposalId}`);
  });

  it("a failed guard blocks the service's gate until an approver clears it", async () => {
    degraded.add("payments");
    const started = await start(train("guarded", { payments: "v2" }));
    const done = await waitForTrain(started.id, (t) => t.state !== "running" && t.revert !== null);
    expect(done.state).toBe("halted");
    degraded.delete("payments");
    await waitUntil(
      async () => (await gate("payments")).verdict === "block",
      10_000,
      () => "payments' gate did not block",
    );
    const blocked = await gate("payments");
    expect(blocked.reasons).toMatchObject([
      {
        code: "release-guard-failed",
        value: started.id,
        message: expect.stringContaining(`release train guarded (${started.id}) step 1`) as string,
      },
    ]);
    expect(blocked.reasons[0]?.message).toMatch(/degraded/);
    // Another train over payments is refused by the same gate.
    const again = await start(train("again", { payments: "v3" }));
    expect((await waitForTrain(again.id, (t) => t.state !== "running")).steps[0]?.phase).toBe(
      "blocked",
    );
    const cleared = await command("guard.clear", {
      service: "payments",
      actor: "ana",
      reason: "a flaky health endpoint, fixed",
    });
    expect(cleared.cleared.map((g) => g.trainId)).toEqual([started.id]);
    expect((await gate("payments")).verdict).toBe("pass");
  });
});
