import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { openEnvRepo } from "@safedeploy/git";
import type { EnvRepo } from "@safedeploy/git";
import {
  consumeEvents,
  provision,
  publishEvent,
  requestCommand,
  serveCommand,
} from "@safedeploy/jetstream";
import type { CommandServer, Subscription } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { SAFEDEPLOY_TOPOLOGY, createEnvelope, messageId } from "@safedeploy/schema";
import type {
  CommandRequest,
  Envelope,
  GateReason,
  GateVerdictKind,
  GuardView,
  ProposalView,
  ReleaseTrainDocument,
  TrainView,
} from "@safedeploy/schema";
import {
  createTestBus,
  createTestEnvRepo,
  git,
  serviceYaml,
  testServiceEnv,
  waitUntil,
  yamlDocuments,
} from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { createReleaseTrainService } from "../src/index.js";

export const SERVICES = ["cart", "catalog", "checkout", "payments"] as const;

export const deployment = (service: string, tag: string) =>
  `# ${service}: owned by its team\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${service}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: ${service}\n          image: shop/${service}:${tag} # pinned\n`;

export function catalogYaml(): string {
  return yamlDocuments(SERVICES.map((name) => serviceYaml(name, { window: "10m" })));
}

/** A local environment repo (bare origin plus a seed clone) with one Deployment per service. */
export interface EnvRepoFixture {
  readonly root: string;
  readonly remote: string;
  branches(): Promise<string[]>;
  /** The image tag of a service's Deployment on main. */
  imageOnMain(service: string): Promise<string>;
  /** What a person does with a promotion's branch: merge it into main (fast-forward). */
  merge(branch: string): Promise<void>;
  close(): Promise<void>;
}

export async function createEnvRepo(): Promise<EnvRepoFixture> {
  const repo = await createTestEnvRepo("train");
  const { remote } = repo;
  await repo.commit(
    "prod at v1",
    Object.fromEntries(
      SERVICES.map((s) => [`envs/prod/${s}/deployment.yaml`, deployment(s, "v1")]),
    ),
  );
  return {
    root: repo.root,
    remote,
    branches: async () => Object.keys(await repo.branches()).sort(),
    imageOnMain: async (service) => {
      const text = await git(remote, ["show", `main:envs/prod/${service}/deployment.yaml`]);
      return /image: shop\/[a-z]+:(\S+)/.exec(text)?.[1] ?? "";
    },
    merge: async (branch) => {
      await git(remote, ["update-ref", "refs/heads/main", `refs/heads/${branch}`]);
    },
    close: () => repo.dispose(),
  };
}

/**
 * A stand-in for the git actuator (a service test may not start another service): it consumes
 * the approved actions through the actuator's own durable, makes the change with the real git
 * adapter and reports it, and, as the reviewer of a promotion would, merges the branch.
 */
export async function startActuator(harness: TestBus, env: EnvRepoFixture) {
  const repo: EnvRepo = await openEnvRepo({
    remote: env.remote,
    workDir: join(env.root, `actuator-${Math.random().toString(36).slice(2)}`),
  });
  const durable = (name: string) => SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === name)!;
  const handler = async (
    requested: Envelope<"governance.action-requested"> | Envelope<"governance.preview-requested">,
  ) => {
    const dryRun = requested.type === "governance.preview-requested";
    const plan = requested.data.plan as {
      action: string;
      path: string;
      image: string;
      patch: Record<string, unknown>;
    };
    const outcome = await repo.apply({
      proposalId: requested.data.proposalId,
      incidentId: null,
      kind: requested.data.kind,
      requestedAt: requested.data.requestedAt,
      change:
        plan.action === "set-image"
          ? { action: "set-image", path: plan.path, image: plan.image }
          : plan.action === "patch-manifest"
            ? { action: "patch-manifest", path: plan.path, patch: plan.patch }
            : { action: "git-revert", path: plan.path },
      dryRun,
    });
    const at = new Date().toISOString();
    if (outcome.status === "needs-triage") {
      await publishEvent(
        harness.bus,
        createEnvelope(
          {
            type: "governance.action-failed",
            id: messageId("governance.action-failed", requested.data.proposalId),
            service: requested.service,
            data: {
              proposalId: requested.data.proposalId,
              at,
              reason: outcome.reason,
              needsTriage: true,
              state: "needs-triage",
              ...(outcome.unchanged === undefined ? {} : { unchanged: true }),
            },
          },
          { source: "git-actuator", time: at, causedBy: requested },
        ),
      );
      return;
    }
    if (outcome.status === "pushed") await env.merge(outcome.branch);
    await publishEvent(
      harness.bus,
      createEnvelope(
        {
          type: "governance.action-completed",
          id: messageId(
            "governance.action-completed",
            requested.data.proposalId,
            ...(dryRun ? ["dry-run"] : []),
          ),
          service: requested.service,
          data: {
            proposalId: requested.data.proposalId,
            incidentId: null,
            kind: requested.data.kind,
            at,
            branch: outcome.branch,
            commit: outcome.commit,
            prUrl: null,
            diff: outcome.diff,
            dryRun,
          },
        },
        { source: "git-actuator", time: at, causedBy: requested },
      ),
    );
  };
  const subscriptions: Subscription[] = [
    consumeEvents(harness.bus, {
      consumer: durable("git-actuator"),
      types: ["governance.action-requested"],
      handler,
    }),
    consumeEvents(harness.bus, {
      consumer: durable("git-actuator-previews"),
      types: ["governance.preview-requested"],
      handler,
    }),
  ];
  return {
    stop: async () => {
      await Promise.all(subscriptions.map((s) => s.stop()));
    },
  };
}

/**
 * Health endpoints a test controls: each service answers `{status, detail, version}`; a
 * failing one answers degraded, a slow one after a delay; `calls` counts each service's probes.
 */
export async function startHealthEndpoints() {
  const failing = new Set<string>();
  const delays = new Map<string, number>();
  const calls = new Map<string, number>();
  const versions = new Map<string, string>();
  const server = createServer((request, response) => {
    const service = /^\/([a-z]+)\/healthz$/.exec(request.url ?? "")?.[1] ?? "";
    calls.set(service, (calls.get(service) ?? 0) + 1);
    const ok = !failing.has(service);
    setTimeout(
      () => {
        response.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            status: ok ? "ok" : "degraded",
            detail: ok ? "ready" : "cache cold",
            version: versions.get(service) ?? "v1",
          }),
        );
      },
      delays.get(service) ?? 0,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (service: string) => `http://127.0.0.1:${port}/${service}/healthz`,
    fail: (service: string) => failing.add(service),
    heal: (service: string) => failing.delete(service),
    slow: (service: string, ms: number) => delays.set(service, ms),
    /** The version a service reports (default v1), as after a deploy. */
    serve: (service: string, version: string) => versions.set(service, version),
    calls: (service: string) => calls.get(service) ?? 0,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

/** A promotion proposal as the fake proposal service keeps it. */
interface FakePromotion {
  readonly request: CommandRequest<"proposal.promotion">;
  readonly required: number;
  readonly approvals: { by: string; at: string; reason: string }[];
  state: "pending" | "approved" | "rejected";
}

/**
 * The services a train asks, as stand-ins on the real bus. Policy: a gate set per service to
 * pass (the default), block or unknown, and the guards failed by `guard.fail` (recorded once per
 * train, step and service). Proposal: reverts it records, and promotion proposals stored once
 * with the starter's approval, approved once the service's `required` (set per service, default
 * 1) distinct people approved; `approve`/`reject` act as another person and publish
 * `governance.proposal-approved`/`-rejected` on the real bus, as the proposal service does. The
 * end-to-end test runs the real ones.
 */
export async function startFakePolicy(harness: TestBus) {
  const reverts: CommandRequest<"proposal.revert">[] = [];
  const guards: CommandRequest<"guard.fail">[] = [];
  const gates = new Map<string, { verdict: GateVerdictKind; reasons: GateReason[] }>();
  const required = new Map<string, number>();
  const promotions = new Map<string, FakePromotion>();
  /** Every `proposal.promotion` request, repeats included. */
  const promotionRequests: CommandRequest<"proposal.promotion">[] = [];
  const gateQueries: string[] = [];

  const viewOf = (promotion: FakePromotion): ProposalView => ({
    id: promotion.request.proposalId,
    service: promotion.request.service,
    incidentId: null,
    kind: "promote-release",
    state: promotion.state,
    createdAt: promotion.request.at,
    approvals: promotion.approvals.map((a) => ({ ...a })),
    action: null,
    required: promotion.required,
  });
  const servers: CommandServer[] = [
    await serveCommand(harness.bus, "proposal.revert", (request): Promise<ProposalView> => {
      if (!reverts.some((r) => r.causeId === request.causeId)) reverts.push(request);
      return Promise.resolve({
        id: `PRP-${request.causeId}`,
        service: request.service,
        incidentId: null,
        kind: "rollback-rollout",
        state: "pending",
        createdAt: request.at,
        approvals: [],
        action: null,
      });
    }),
    await serveCommand(harness.bus, "proposal.promotion", (request): Promise<ProposalView> => {
      promotionRequests.push(request);
      let promotion = promotions.get(request.proposalId);
      if (promotion === undefined) {
        const needs = required.get(request.service) ?? 1;
        promotion = {
          request,
          required: needs,
          approvals: [{ by: request.actor, at: request.at, reason: "started the train" }],
          state: needs <= 1 ? "approved" : "pending",
        };
        promotions.set(request.proposalId, promotion);
      }
      return Promise.resolve(viewOf(promotion));
    }),
    await serveCommand(harness.bus, "gate.query", (request) => {
      gateQueries.push(request.service);
      const gate = gates.get(request.service) ?? { verdict: "pass", reasons: [] };
      return Promise.resolve({
        service: request.service,
        allowed: gate.verdict === "pass",
        verdict: gate.verdict,
        reasons: gate.reasons,
        evaluatedAt: new Date().toISOString(),
        evidenceAge: 5,
      });
    }),
    await serveCommand(harness.bus, "guard.fail", (request): Promise<GuardView> => {
      const same = (g: CommandRequest<"guard.fail">) =>
        g.trainId === request.trainId && g.step === request.step && g.service === request.service;
      if (!guards.some(same)) guards.push(request);
      return Promise.resolve({
        id: `guard:${request.service}:${request.trainId}:${request.step ?? "train"}`,
        service: request.service,
        train: request.train,
        trainId: request.trainId,
        step: request.step,
        reason: request.reason,
        evidence: request.evidence,
        at: request.at,
        clearedAt: null,
        clearedBy: null,
      });
    }),
  ];
  return {
    reverts,
    guards,
    promotionRequests,
    gateQueries,
    /** What a service's gate answers from now on (pass with no reason by default). */
    setGate: (service: string, verdict: GateVerdictKind, reasons: GateReason[] = []) => {
      gates.set(service, { verdict, reasons });
    },
    /** The distinct approvals a service's promotions need (default 1: the starter's). */
    requireApprovals: (service: string, count: number) => required.set(service, count),
    promotion: (proposalId: string) => {
      const promotion = promotions.get(proposalId);
      return promotion === undefined ? undefined : viewOf(promotion);
    },
    /** Another person approves a promotion proposal (published like the proposal service does). */
    approve: async (proposalId: string, by: string) => {
      const promotion = promotions.get(proposalId);
      if (promotion === undefined) throw new Error(`no promotion proposal ${proposalId}`);
      if (!promotion.approvals.some((a) => a.by === by)) {
        promotion.approvals.push({ by, at: new Date().toISOString(), reason: "lgtm" });
      }
      if (promotion.approvals.length >= promotion.required) promotion.state = "approved";
      const at = new Date().toISOString();
      await publishEvent(
        harness.bus,
        createEnvelope(
          {
            type: "governance.proposal-approved",
            id: messageId("governance.proposal-approved", proposalId, by),
            service: promotion.request.service,
            data: {
              proposalId,
              by,
              at,
              reason: "lgtm",
              approvals: promotion.approvals.length,
              required: promotion.required,
              approved: promotion.state === "approved",
            },
          },
          { source: "proposal", time: at },
        ),
      );
    },
    /** Another person rejects a promotion proposal. */
    reject: async (proposalId: string, by: string, reason: string) => {
      const promotion = promotions.get(proposalId);
      if (promotion === undefined) throw new Error(`no promotion proposal ${proposalId}`);
      promotion.state = "rejected";
      const at = new Date().toISOString();
      await publishEvent(
        harness.bus,
        createEnvelope(
          {
            type: "governance.proposal-rejected",
            id: messageId("governance.proposal-rejected", proposalId),
            service: promotion.request.service,
            data: { proposalId, by, at, reason },
          },
          { source: "proposal", time: at },
        ),
      );
    },
    stop: () => Promise.all(servers.map((s) => s.stop())),
  };
}

export async function startTrainReplica(
  harness: TestBus,
  catalogPath: string,
  overrides: Record<string, string> = {},
  options: { readonly leaseMs?: number } = {},
): Promise<ServiceHandle> {
  return startService(
    createReleaseTrainService({ tickMs: 200, leaseMs: options.leaseMs ?? 5_000 }),
    {
      env: testServiceEnv(harness, {
        SAFEDEPLOY_CATALOG: catalogPath,
        HEALTH_PORT: "0",
        ...overrides,
      }),
    },
  );
}

export async function writeCatalog(dir: string, text: string): Promise<string> {
  const path = join(dir, "catalog.yaml");
  await writeFile(path, text);
  return path;
}

/** Starts a train as alice (who approves its promotions); resolves its first view. */
export async function startTrain(
  harness: TestBus,
  document: ReleaseTrainDocument,
  options: { readonly dryRun?: boolean; readonly haltOn?: "fatal" | "warning" } = {},
): Promise<TrainView> {
  const reply = await requestCommand(harness.bus, "train.start", {
    train: document,
    dryRun: options.dryRun ?? false,
    ...(options.haltOn === undefined ? {} : { haltOn: options.haltOn }),
    actor: "alice",
  });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

export async function trainStatus(harness: TestBus, trainId: string): Promise<TrainView> {
  const reply = await requestCommand(harness.bus, "train.status", { trainId });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
}

/** Waits until the train satisfies `done`, returning its last view. */
export async function waitForTrain(
  harness: TestBus,
  trainId: string,
  done: (train: TrainView) => boolean,
  timeoutMs = 30_000,
): Promise<TrainView> {
  let last: TrainView | undefined;
  await waitUntil(
    async () => {
      last = await trainStatus(harness, trainId);
      return done(last);
    },
    timeoutMs,
    () => `train ${trainId} is ${JSON.stringify(last, null, 1)}`,
  );
  return last!;
}

/**
 * Everything a train needs on a fresh bus: the env repo, health endpoints, the fake policy and
 * proposal services, the git actuator and `replicas` release-train replicas; `stop` ends it all.
 */
export async function startTrainWorld(replicaCount: number) {
  const harness = await createTestBus();
  await provision(harness.bus);
  const env = await createEnvRepo();
  const health = await startHealthEndpoints();
  const policy = await startFakePolicy(harness);
  const actuator = await startActuator(harness, env);
  const catalogPath = await writeCatalog(env.root, catalogYaml());
  const replicas: ServiceHandle[] = [];
  for (let i = 0; i < replicaCount; i += 1) {
    replicas.push(await startTrainReplica(harness, catalogPath));
  }
  return {
    ...{ harness, env, health, policy, replicas },
    stop: async () => {
      for (const replica of replicas) await replica.shutdown("test");
      await actuator.stop();
      await policy.stop();
      await health.close();
      await harness.cleanup();
      await env.close();
    },
  };
}
