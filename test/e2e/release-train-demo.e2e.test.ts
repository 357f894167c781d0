// Issue 7 against real demo services: four demo apps (search, basket, checkout, orders), each its
// own HTTP server serving its own traffic and exporting /metrics, scraped by a real Prometheus; the
// real policy, proposal and git-actuator services in this process and the release-train service
// as a child process (node services/release-train/dist/main.js, so `pnpm build` first), which the
// test SIGKILLs mid-train. A reviewer merges the train's promotion branches and an Argo CD
// stand-in deploys what main names, so a promotion really changes what an app serves.
//
// One stack, scenarios in order: a dry run; all four healthy (and the release-train process killed
// during step 2's guard window); checkout to the degraded version v4 (halt after step 3, a revert
// of checkout only, approved by a person); two services failing at once (manual triage).
import { execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoApp } from "@safedeploy/demo";
import type { DemoApp } from "@safedeploy/demo";
import { openKv, provision, requestCommand } from "@safedeploy/jetstream";
import type { Bus, TypedKv } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceDefinition, ServiceHandle } from "@safedeploy/runtime";
import { AnyEnvelope, qualifiedName } from "@safedeploy/schema";
import type { Envelope, ReleaseTrainDocument, TrainView } from "@safedeploy/schema";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { TrainRecord } from "@safedeploy/service-release-train";
import {
  deploymentManifest,
  createTestBus,
  createTestEnvRepo,
  freePort,
  git,
  policyYaml,
  serviceYaml,
  startProcess,
  startPrometheus,
  testServiceEnv,
  waitUntil,
  yamlDocuments,
} from "@safedeploy/testing";
import type { ManagedProcess, PrivatePrometheus, TestBus, TestEnvRepo } from "@safedeploy/testing";

const exec = promisify(execFile);
const RELEASE_TRAIN_MAIN = fileURLToPath(
  new URL("../../services/release-train/dist/main.js", import.meta.url),
);
const SERVICES = ["search", "basket", "checkout", "orders"] as const;
type Shop = (typeof SERVICES)[number];
/** The demo app's degraded version: serves 200s, reports `degraded` on /healthz. */
const DEGRADED = "v4";

const catalog = () =>
  yamlDocuments([
    policyYaml("  requireCanary: false\n  noData: allow\n  approvals: { required: 1 }\n"),
    ...SERVICES.map((name) => serviceYaml(name, { window: "10m" })),
  ]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let repo: TestEnvRepo;
let harness: TestBus;
let prometheus: PrivatePrometheus;
let env: Record<string, string>;
let trains: TypedKv<TrainRecord>;
let trainProcess: ManagedProcess;
const apps = {} as Record<Shop, DemoApp>;
const cleanups: (() => Promise<unknown>)[] = [];
/** What went wrong in the background loops, shown when a wait times out. */
const loopErrors: string[] = [];

/** GOVERNANCE as stored so far, in order; each call reads only what was stored since the last. */
function governanceReader(bus: Bus): () => Promise<Envelope[]> {
  const name = qualifiedName(bus.ns, "GOVERNANCE");
  const seen: Envelope[] = [];
  let next = 1;
  const readNew = async () => {
    const info = await bus.jsm.streams.info(name);
    for (let seq = Math.max(next, info.state.first_seq); seq <= info.state.last_seq; seq++) {
      const message = await bus.jsm.streams.getMessage(name, { seq });
      if (message !== null) seen.push(AnyEnvelope.parse(message.json()));
      next = seq + 1;
    }
  };
  let reading: Promise<void> = Promise.resolve();
  return async () => {
    reading = reading.catch(() => undefined).then(readNew);
    await reading;
    return [...seen];
  };
}
let governance: () => Promise<Envelope[]>;

/** Runs `work` every `ms` until stopped; a failed round is recorded and the next one runs. */
function repeat(name: string, ms: number, work: () => Promise<void>): () => Promise<void> {
  const loop = { stopped: false };
  const done = (async () => {
    while (!loop.stopped) {
      await work().catch((error: unknown) => {
        loopErrors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      });
      await sleep(ms);
    }
  })();
  return async () => {
    loop.stopped = true;
    await done;
  };
}

async function isAncestor(commit: string, of: string): Promise<boolean> {
  return exec("git", ["merge-base", "--is-ancestor", commit, of], { cwd: repo.remote }).then(
    () => true,
    () => false,
  );
}

/** What a reviewer does with a branch: merge it into main, fast-forward only. */
async function mergeIntoMain(commit: string): Promise<void> {
  const main = await git(repo.remote, ["rev-parse", "main"]);
  if (await isAncestor(commit, main)) return;
  if (!(await isAncestor(main, commit))) throw new Error(`${commit} does not fast-forward main`);
  await git(repo.remote, ["update-ref", "refs/heads/main", commit, main]);
}

const merged = new Set<string>();
/** The reviewer of every promotion the git actuator pushes (not of dry runs, which push none). */
async function mergePromotions(): Promise<void> {
  for (const event of await governance()) {
    if (event.type !== "governance.action-completed") continue;
    if (event.data.kind !== "promote-release" || event.data.dryRun) continue;
    if (merged.has(event.data.commit)) continue;
    await mergeIntoMain(event.data.commit);
    merged.add(event.data.commit);
  }
}

async function imageOn(ref: string, service: Shop): Promise<string> {
  const text = await git(repo.remote, ["show", `${ref}:envs/prod/${service}/deployment.yaml`]);
  const tag = /image: shop\/[a-z]+:(\S+)/.exec(text)?.[1];
  if (tag === undefined) throw new Error(`no image of ${service} on ${ref}`);
  return tag;
}

let synced = "";
/**
 * Stands in for Argo CD: when main moves, each demo app is set to the image tag its
 * deployment.yaml on main names, so what the environment repo says is what the app runs.
 */
async function syncApps(): Promise<void> {
  const head = await git(repo.remote, ["rev-parse", "main"]);
  if (head === synced) return;
  for (const service of SERVICES) {
    const tag = await imageOn(head, service);
    if (apps[service].version().version !== tag) apps[service].setVersion(tag);
  }
  synced = head;
}

/** The release-train service as its own process, once its readiness probe answers. */
async function startTrainProcess(): Promise<ManagedProcess> {
  const port = await freePort();
  const started = startProcess(
    process.execPath,
    [RELEASE_TRAIN_MAIN],
    join(repo.root, "release-train.log"),
    {
      env: {
        PATH: process.env.PATH ?? "",
        ...env,
        LOG_LEVEL: "info",
        HEALTH_PORT: String(port),
      },
    },
  );
  await waitUntil(
    async () => {
      if (started.child.exitCode !== null) return false;
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
    },
    20_000,
    () => `the release-train process is not ready:\n${started.logTail()}`,
  );
  return started;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
}

/**
 * SIGKILLs the release-train process wherever it is, maybe inside a pass holding the train's
 * lease: a new process then waits out that lease (15 s at most, as the process is not there to
 * renew it). Resolves the train as the dead process left it.
 */
async function kill(trainId: string): Promise<TrainRecord> {
  const { child } = trainProcess;
  child.kill("SIGKILL");
  await exited(child);
  const record = (await trains.get(trainId))?.value;
  if (record === undefined) throw new Error(`train ${trainId} is not stored`);
  return record;
}

function train(
  name: string,
  tags: Readonly<Record<Shop, string>>,
  guardWindow: string,
): ReleaseTrainDocument {
  return {
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name },
    spec: {
      steps: SERVICES.map((service) => ({
        service,
        image: `shop/${service}:${tags[service]}`,
        guardWindow,
        // Deployed once the app serves the new version: merged by the reviewer, synced by "Argo".
        deployedWhen: {
          http: `${apps[service].url}/healthz`,
          expect: { status: 200, json: { "$.version": tags[service] } },
          within: "30s",
        },
        checks: [
          {
            http: `${apps[service].url}/healthz`,
            expect: { status: 200, json: { "$.status": "ok" } },
            severity: "fatal" as const,
          },
        ],
        regression: { maxErrorRatioIncrease: 3 },
      })),
      finalChecks: [],
      followUps: [],
    },
  };
}

const everyService = (tag: string) =>
  Object.fromEntries(SERVICES.map((s) => [s, tag])) as Record<Shop, string>;

async function start(document: ReleaseTrainDocument, dryRun = false): Promise<TrainView> {
  const reply = await requestCommand(harness.bus, "train.start", {
    train: document,
    dryRun,
    actor: "alice",
  });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

async function status(trainId: string): Promise<TrainView> {
  const reply = await requestCommand(harness.bus, "train.status", { trainId });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

/** The background's state, for a timeout's message. */
function context(): string {
  return [
    `apps: ${SERVICES.map((s) => `${s}=${apps[s].version().version}/${apps[s].health().status}`).join(" ")}`,
    `loop errors: ${loopErrors.slice(-5).join(" | ") || "none"}`,
    `release-train log:\n${trainProcess.logTail(15)}`,
  ].join("\n");
}

async function waitForTrain(
  trainId: string,
  done: (train: TrainView) => boolean,
  timeoutMs = 40_000,
): Promise<TrainView> {
  let last: TrainView | undefined;
  await waitUntil(
    async () => {
      last = await status(trainId);
      return done(last);
    },
    timeoutMs,
    () => `train ${trainId}: ${JSON.stringify(last, null, 1)}\n${context()}`,
  );
  return last!;
}

async function trainStarted(trainId: string): Promise<Envelope<"governance.train-started">> {
  const found = (await governance()).find(
    (e): e is Envelope<"governance.train-started"> =>
      e.type === "governance.train-started" && e.data.trainId === trainId,
  );
  if (found === undefined) throw new Error(`no train-started event of ${trainId}`);
  return found;
}

/** The proposals filed by the proposal service, but a train's own promotions (each a proposal). */
async function proposalsCreated(): Promise<Envelope<"governance.proposal-created">[]> {
  return (await governance()).filter(
    (e): e is Envelope<"governance.proposal-created"> =>
      e.type === "governance.proposal-created" && e.data.kind !== "promote-release",
  );
}

/** Waits until every app serves `tags` (the Argo CD stand-in has synced main). */
async function waitForApps(tags: Partial<Record<Shop, string>>): Promise<void> {
  await waitUntil(
    () =>
      Promise.resolve(
        Object.entries(tags).every(([s, tag]) => apps[s as Shop].version().version === tag),
      ),
    10_000,
    () => `apps do not serve ${JSON.stringify(tags)}\n${context()}`,
  );
}

async function healthOf(service: Shop): Promise<{ status: string; version: string }> {
  return (await (await fetch(`${apps[service].url}/healthz`)).json()) as {
    status: string;
    version: string;
  };
}

beforeAll(async () => {
  if (!existsSync(RELEASE_TRAIN_MAIN)) {
    throw new Error(`${RELEASE_TRAIN_MAIN} is missing: run pnpm build first`);
  }
  repo = await createTestEnvRepo("train-demo");
  cleanups.push(() => repo.dispose());
  await repo.commit(
    "prod at v1",
    Object.fromEntries(
      SERVICES.map((s) => [`envs/prod/${s}/deployment.yaml`, deploymentManifest(s, "v1")]),
    ),
  );
  await writeFile(join(repo.root, "catalog.yaml"), catalog());

  for (const service of SERVICES) {
    apps[service] = await startDemoApp({ service, rps: 20, version: "v1" });
    cleanups.push(() => apps[service].close());
  }
  prometheus = await startPrometheus({
    scrape: [{ jobName: "shop", targets: SERVICES.map((s) => apps[s].target) }],
  });
  cleanups.push(() => prometheus.dispose());

  harness = await createTestBus();
  cleanups.push(() => harness.cleanup());
  await provision(harness.bus);
  governance = governanceReader(harness.bus);
  env = testServiceEnv(harness, {
    PROMETHEUS_URL: prometheus.url,
    SAFEDEPLOY_CATALOG: join(repo.root, "catalog.yaml"),
    SAFEDEPLOY_ENV_REPO: repo.remote,
    SAFEDEPLOY_ENV_BRANCH: "main",
    SAFEDEPLOY_FORGE: "git",
    SAFEDEPLOY_HOME: join(repo.root, "home"),
  });
  const definitions: ServiceDefinition[] = [
    policyService,
    proposalService,
    createGitActuatorService({ env }),
  ];
  for (const definition of definitions) {
    const handle: ServiceHandle = await startService(definition, { env });
    cleanups.push(() => handle.shutdown("test"));
  }
  trains = await openKv(harness.bus, "trains", TrainRecord);
  trainProcess = await startTrainProcess();
  // The current process, whichever it is by then (the test replaces it).
  cleanups.push(() => trainProcess.stop());
  cleanups.push(repeat("reviewer", 200, mergePromotions));
  cleanups.push(repeat("argo-cd", 200, syncApps));

  // A baseline before anything is deployed: two scrapes of every app's traffic.
  await waitUntil(
    async () => {
      const query = encodeURIComponent("sum by (service) (increase(http_requests_total[5s])) > 0");
      const answer = (await (
        await fetch(`${prometheus.url}/api/v1/query?query=${query}`)
      ).json()) as {
        data: { result: unknown[] };
      };
      return answer.data.result.length === SERVICES.length;
    },
    20_000,
    () => "Prometheus has no traffic of the four apps",
  );
}, 60_000);

afterAll(async () => {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.reverse()) {
    await cleanup().catch((error: unknown) => failures.push(error));
  }
  if (failures.length > 0) throw new AggregateError(failures, "cleanup failed");
});

describe("release trains against real demo services", () => {
  let dryPlan: Envelope<"governance.train-started">["data"]["steps"] = [];
  let dryDiffs: (string | null)[] = [];

  it("a dry run completes, pushes nothing, and records the plan it would run", async () => {
    const mainBefore = await git(repo.remote, ["rev-parse", "main"]);
    const started = await start(train("shop-v3", everyService("v3"), "3s"), true);
    const done = await waitForTrain(started.id, (t) => t.state !== "running");
    expect(done).toMatchObject({ state: "completed", dryRun: true });
    for (const step of done.steps) {
      expect(step.diff).toContain(`+          image: shop/${step.service}:v3`);
    }
    expect(await repo.branches()).toEqual({});
    expect(await git(repo.remote, ["rev-parse", "main"])).toBe(mainBefore);
    for (const service of SERVICES) expect(apps[service].version().version).toBe("v1");
    const planned = await trainStarted(started.id);
    expect(planned.data.dryRun).toBe(true);
    expect(planned.data.steps.map((s) => s.service)).toEqual([...SERVICES]);
    for (const step of planned.data.steps) {
      expect(step.change).toContain(`image shop/${step.service}:v3`);
    }
    dryPlan = planned.data.steps;
    dryDiffs = done.steps.map((s) => s.diff);
  }, 30_000);

  it("promotes four healthy services in order with guard windows, through a SIGKILL of the release-train process during step 2's guard window", async () => {
    const started = await start(train("shop-v3", everyService("v3"), "3s"));
    await waitForTrain(started.id, (t) => t.steps[1]!.phase === "guarding");
    const left = await kill(started.id);
    expect(left.state.steps.map((s) => s.phase)).toEqual([
      "checked",
      "guarding",
      "pending",
      "pending",
    ]);
    trainProcess = await startTrainProcess();

    const done = await waitForTrain(started.id, (t) => t.state !== "running");
    expect(done.state).toBe("completed");
    expect(done.steps.map((s) => [s.service, s.phase, s.outcome])).toEqual(
      SERVICES.map((s) => [s, "checked", "ok"]),
    );
    for (const [i, step] of done.steps.entries()) {
      // The deploy time is when the app served v3 (deployedWhen), and the guard window ran from it.
      expect(step.evidence).toContainEqual(
        expect.objectContaining({ type: "deployed-when", outcome: "ok", at: step.deployedAt }),
      );
      expect(Date.parse(step.guardUntil!) - Date.parse(step.deployedAt!)).toBe(3_000);
      const previous = done.steps[i - 1];
      if (previous !== undefined) expect(step.deployedAt! >= previous.guardUntil!).toBe(true);
    }
    for (const service of SERVICES) expect(await imageOn("main", service)).toBe("v3");
    expect(Object.keys(await repo.branches()).sort()).toEqual(
      [1, 2, 3, 4].map((n) => `safedeploy/${started.id}-s${n}`),
    );
    await waitForApps(everyService("v3"));
    for (const service of SERVICES) {
      const served = (await (await fetch(apps[service].url)).json()) as { version: string };
      expect(served.version).toBe("v3");
      expect(await healthOf(service)).toMatchObject({ status: "ok", version: "v3" });
    }
    // The plan and the changes the dry run showed are the ones executed (main was where it was).
    const real = await trainStarted(started.id);
    expect(real.data.dryRun).toBe(false);
    expect(real.data.steps).toEqual(dryPlan);
    expect(done.steps.map((s) => ({ service: s.service, change: s.change }))).toEqual(dryPlan);
    expect(done.steps.map((s) => s.diff)).toEqual(dryDiffs);
  }, 60_000);

  it("halts after step 3 when checkout's new version fails its content check, and proposes a revert of checkout only", async () => {
    const started = await start(
      train("shop-v5", { search: "v5", basket: "v5", checkout: DEGRADED, orders: "v5" }, "2s"),
    );
    const done = await waitForTrain(started.id, (t) => t.state !== "running" && t.revert !== null);
    expect(done.state).toBe("halted");
    expect(done.steps.map((s) => s.phase)).toEqual(["checked", "checked", "checked", "pending"]);
    expect(done.steps.map((s) => s.outcome)).toEqual(["ok", "ok", "fatal", null]);
    expect(JSON.stringify(done.steps[2]!.evidence)).toContain("degraded");
    expect(done.revert).toMatchObject({ service: "checkout", step: 2 });
    const proposalId = done.revert!.proposalId;

    // The real proposal service made exactly one proposal: checkout's path, nobody else's.
    await waitUntil(
      async () => (await proposalsCreated()).length > 0,
      10_000,
      () => "no governance.proposal-created",
    );
    const created = await proposalsCreated();
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      service: "checkout",
      data: {
        proposalId,
        kind: "rollback-rollout",
        causeId: `${started.id}:step-3`,
        plan: { action: "git-revert", path: "envs/prod/checkout" },
      },
    });
    expect(await imageOn("main", "search")).toBe("v5");
    expect(await imageOn("main", "basket")).toBe("v5");
    expect(await imageOn("main", "checkout")).toBe(DEGRADED);
    expect(await imageOn("main", "orders")).toBe("v3");

    const approved = await requestCommand(harness.bus, "proposal.approve", {
      proposalId,
      by: "bob",
      reason: "checkout v4 reports degraded",
    });
    expect(approved.ok).toBe(true);
    let reverted: Envelope<"governance.action-completed"> | undefined;
    await waitUntil(
      async () => {
        reverted = (await governance()).find(
          (e): e is Envelope<"governance.action-completed"> =>
            e.type === "governance.action-completed" &&
            e.data.proposalId === proposalId &&
            !e.data.dryRun,
        );
        return reverted !== undefined;
      },
      30_000,
      () => `the approved revert was not executed\n${context()}`,
    );
    const branch = `safedeploy/${proposalId}`;
    expect(reverted!.data.branch).toBe(branch);
    const changed = await git(repo.remote, ["diff", "--name-only", `main...${branch}`]);
    expect(changed.split("\n")).toEqual(["envs/prod/checkout/deployment.yaml"]);
    expect(await imageOn(branch, "checkout")).toBe("v3");
    expect(await imageOn(branch, "search")).toBe("v5");
    expect(await imageOn(branch, "basket")).toBe("v5");

    // The reviewer merges the approved revert: checkout runs v3 again and is healthy.
    await mergeIntoMain(reverted!.data.commit);
    await waitForApps({ search: "v5", basket: "v5", checkout: "v3", orders: "v3" });
    expect(await healthOf("checkout")).toMatchObject({ status: "ok", version: "v3" });
  }, 60_000);

  it("flags manual triage and reverts nothing when two services fail at once", async () => {
    const proposalsBefore = (await proposalsCreated()).length;
    const branchesBefore = Object.keys(await repo.branches());
    const started = await start(
      train("shop-v6", { search: "v6", basket: "v6", checkout: DEGRADED, orders: "v6" }, "3s"),
    );
    // checkout goes to its degraded version; during its guard window basket's dependency breaks.
    await waitForTrain(started.id, (t) => t.steps[2]!.phase === "guarding");
    const broken = await fetch(`${apps.basket.url}/admin/dependency`, {
      method: "POST",
      body: JSON.stringify({ healthy: false }),
    });
    expect(broken.status).toBe(200);
    try {
      const done = await waitForTrain(started.id, (t) => t.state !== "running");
      expect(done.state).toBe("needs-triage");
      expect(done.steps.map((s) => s.phase)).toEqual(["checked", "checked", "checked", "pending"]);
      expect(done.revert).toBeNull();
      expect(done.triage?.steps).toEqual([1, 2]);
      expect(done.triage?.evidence[0]).toBe("2 services failing at once: basket, checkout");
      // One more tick of the release-train process: a revert, had one been decided, would show.
      await sleep(1_500);
      expect((await status(started.id)).revert).toBeNull();
      expect(await proposalsCreated()).toHaveLength(proposalsBefore);
      expect(Object.keys(await repo.branches()).sort()).toEqual(
        [...branchesBefore, ...[1, 2, 3].map((n) => `safedeploy/${started.id}-s${n}`)].sort(),
      );
      expect(await imageOn("main", "search")).toBe("v6");
      expect(await imageOn("main", "basket")).toBe("v6");
      expect(await imageOn("main", "checkout")).toBe(DEGRADED);
      expect(await imageOn("main", "orders")).toBe("v3");
    } finally {
      apps.basket.setDependencyHealthy(true);
    }
  }, 60_000);
});
