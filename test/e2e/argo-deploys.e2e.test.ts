// Deploy events and canary steps from outside, end to end: the payloads Argo CD and Argo Rollouts
// send with deploy/argo/'s templates (test/fixtures/argo) are posted to the real gateway, over
// the real policy, incident, proposal, audit and git-actuator services, NATS, PostgreSQL and a
// bare environment repo: deduplicated, stored in the audit log, shown on the incident, and a
// canary step baked into a promote-canary proposal whose approval pushes the next setWeight.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1";
import { runCli } from "@safedeploy/cli";
import { rolloutManifest } from "@safedeploy/demo";
import { publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { Envelope } from "@safedeploy/schema";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import {
  budgetEvaluationEvent,
  createTestEnvRepo,
  git,
  readStream,
  testServiceEnv,
  waitUntil,
} from "@safedeploy/testing";
import type { TestEnvRepo } from "@safedeploy/testing";
import { CATALOG, TOKENS, bearer, startControlPlane } from "./gateway-harness.js";
import type { ControlPlane } from "./gateway-harness.js";

const FIXTURES = new URL("../fixtures/argo/", import.meta.url).pathname;
const MANIFEST = "envs/prod/checkout/rollout.yaml";

let ctl: ControlPlane;
let repo: TestEnvRepo;
let home: string;
let actuator: ServiceHandle;
let url: string;
// Evidence second by second from ten minutes ago, so nothing waits on the wall clock.
const origin = Date.now() - 10 * 60_000;
const at = (second: number) => new Date(origin + second * 1_000).toISOString();

/** A fixture as the tool sent it, with its time moved onto the test's clock. */
async function fixture(name: string, when?: string): Promise<Record<string, unknown>> {
  const payload = JSON.parse(await readFile(join(FIXTURES, name), "utf8")) as Record<
    string,
    unknown
  >;
  return when === undefined ? payload : { ...payload, at: when };
}

const post = (path: string, payload: object, role: keyof typeof TOKENS = "viewer") =>
  ctl.app.inject({ method: "POST", url: path, headers: bearer(role), payload });
const get = (path: string) =>
  ctl.app.inject({ method: "GET", url: path, headers: bearer("viewer") });

const governance = async (type: string): Promise<Envelope[]> =>
  (await readStream(ctl.harness.bus, "GOVERNANCE")).filter(
    (e) => e.type === type && e.service === "checkout",
  );

/** Publishes evaluations as the budget service would, and waits until policy and incident took them. */
async function feed(...evaluations: Envelope<"budget.evaluated">[]) {
  const stream = `${ctl.harness.bus.ns.prefix}BUDGET`;
  for (const e of evaluations) await publishEvent(ctl.harness.bus, e);
  for (const durable of ["policy", "incident"]) {
    await waitUntil(
      async () => {
        const info = await ctl.harness.bus.jsm.consumers.info(
          stream,
          `${ctl.harness.bus.ns.prefix}${durable}`,
        );
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      10_000,
      () => `the ${durable} service did not take the evaluations in`,
    );
  }
}

interface Proposal {
  id: string;
  kind: string;
  state: string;
  action: { branch: string } | null;
}
const proposals = async (kind: string): Promise<Proposal[]> =>
  get("/v1/proposals?service=checkout")
    .then((r) => r.json<{ items: Proposal[] }>())
    .then((b) => b.items.filter((p) => p.kind === kind));
async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  let found: T | undefined;
  await waitUntil(
    async () => (found = await probe()) !== undefined,
    15_000,
    () => what,
  );
  return found as T;
}

beforeAll(async () => {
  ctl = await startControlPlane();
  repo = await createTestEnvRepo("argo-deploys");
  await repo.commit("checkout v2.3.0 at 10%", {
    [MANIFEST]: rolloutManifest("checkout", "registry.example.com/shop/checkout:v2.3.0"),
  });
  await repo.commit("checkout v2.4.0", {
    [MANIFEST]: rolloutManifest("checkout", "registry.example.com/shop/checkout:v2.4.0"),
  });
  home = await mkdtemp(join(tmpdir(), "sd-argo-deploys-"));
  const env = testServiceEnv(ctl.harness, {
    SAFEDEPLOY_CATALOG: CATALOG,
    SAFEDEPLOY_ENV_REPO: repo.remote,
    SAFEDEPLOY_ENV_BRANCH: "main",
    SAFEDEPLOY_FORGE: "git",
    SAFEDEPLOY_HOME: home,
  });
  actuator = await startService(createGitActuatorService({ env }), { env });
  url = await ctl.app.listen({ host: "127.0.0.1", port: 0 });
}, 60_000);

afterAll(async () => {
  await actuator.shutdown("test");
  await ctl.stop();
  await repo.dispose();
  await rm(home, { recursive: true, force: true });
});

/** A template body with every `{{ … }}` action rendered as null: its JSON shape. */
function templateShape(body: string): Record<string, unknown> {
  const text = body
    .split("\n")
    .filter((line) => !line.trim().startsWith("{{-"))
    .join("\n")
    .replace(/\{\{[^}]*\}\}/g, "null");
  return JSON.parse(text) as Record<string, unknown>;
}

describe("deploy/argo templates and the fixtures", () => {
  it("render the fields the fixtures carry, for every trigger", async () => {
    const triggers = new Map<string, Record<string, unknown>>();
    for (const file of [
      "argocd-notifications-cm.yaml",
      "argo-rollouts-notification-configmap.yaml",
    ]) {
      const text = await readFile(new URL(`../../deploy/argo/${file}`, import.meta.url), "utf8");
      const { data } = parse(text) as { data: Record<string, string> };
      for (const [key, value] of Object.entries(data)) {
        if (!key.startsWith("template.")) continue;
        const { webhook } = parse(value) as {
          webhook: { safedeploy: { method: string; path: string; body: string } };
        };
        expect(webhook.safedeploy).toMatchObject({ method: "POST", path: "/v1/deploys" });
        const shape = templateShape(webhook.safedeploy.body);
        triggers.set(String(shape.trigger), shape);
      }
    }
    expect([...triggers.keys()].sort()).toEqual([
      "on-deployed",
      "on-rollout-aborted",
      "on-rollout-completed",
      "on-rollout-step-completed",
      "on-sync-failed",
    ]);
    const fixtures: [string, string][] = [
      ["argocd-on-deployed.json", "on-deployed"],
      ["argocd-on-sync-failed.json", "on-sync-failed"],
      ["rollouts-step-completed-setweight-10.json", "on-rollout-step-completed"],
      ["rollouts-completed.json", "on-rollout-completed"],
      ["rollouts-aborted.json", "on-rollout-aborted"],
    ];
    for (const [name, trigger] of fixtures) {
      const payload = await fixture(name);
      const shape = triggers.get(trigger) ?? {};
      expect(Object.keys(payload).sort(), name).toEqual(Object.keys(shape).sort());
      expect(Object.keys(payload.details as object).sort(), name).toEqual(
        Object.keys(shape.details as object).sort(),
      );
    }
  });
});

describe("deploy events from Argo CD", () => {
  it("records on-deployed once however often Argo CD sends it, and stores it in the audit log", async () => {
    const payload = await fixture("argocd-on-deployed.json", at(0));
    const first = await post("/v1/deploys", payload);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({
      service: "checkout",
      recorded: true,
      deploy: {
        reporter: "argocd",
        trigger: "on-deployed",
        step: null,
        revision: payload.revision,
      },
      canary: { started: false },
    });
    // A retry (same body) and a re-send rendered later (another `at`): one event all the same.
    expect((await post("/v1/deploys", payload)).json()).toMatchObject({ recorded: false });
    expect((await post("/v1/deploys", { ...payload, at: at(30) })).json()).toMatchObject({
      recorded: false,
    });
    expect(await governance("governance.deploy-recorded")).toHaveLength(1);
    await waitUntil(
      async () =>
        (
          await ctl.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM audit_log WHERE type = 'governance.deploy-recorded' AND service = 'checkout'",
          )
        ).rows[0]?.n === 1,
      10_000,
      () => "the deploy event is not in the audit log",
    );
    const failed = await post("/v1/deploys", await fixture("argocd-on-sync-failed.json", at(20)));
    expect(failed.json()).toMatchObject({ recorded: true, deploy: { trigger: "on-sync-failed" } });
    const listed = await get("/v1/deploys?service=checkout");
    expect(listed.json<{ items: { trigger: string }[] }>().items.map((d) => d.trigger)).toEqual([
      "on-deployed",
      "on-sync-failed",
    ]);
  });

  it("refuses an app that is no catalog service (404 naming app) and a malformed body (400)", async () => {
    const unknown = await post("/v1/deploys", await fixture("argocd-unknown-app.json"));
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: "not_found", details: [{ path: "app" }] });
    const bad = await post("/v1/deploys", {
      ...(await fixture("argocd-on-deployed.json")),
      at: "yesterday",
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("at");
    const anonymous = await ctl.app.inject({ method: "POST", url: "/v1/deploys", payload: {} });
    expect(anonymous.statusCode).toBe(401);
  });
});

describe("canary steps from Argo Rollouts, to the pushed branch", () => {
  it("bakes the setWeight 10 step, proposes 50, and the approval pushes setWeight 50", async () => {
    const step = await post(
      "/v1/deploys",
      await fixture("rollouts-step-completed-setweight-10.json", at(60)),
    );
    expect(step.statusCode, step.body).toBe(201);
    expect(step.json()).toMatchObject({
      recorded: true,
      canary: { started: true, step: { weight: 10, since: at(60), next: 50 } },
    });
    // The pause step after it reports the same weight: no second bake.
    const pause = await post(
      "/v1/deploys",
      await fixture("rollouts-step-completed-pause.json", at(61)),
    );
    expect(pause.json()).toMatchObject({
      recorded: true,
      canary: { step: { weight: 10, since: at(60) } },
    });
    expect(await proposals("promote-canary")).toHaveLength(0);

    await feed(budgetEvaluationEvent("checkout", at(61), "normal")); // 1 s of a 2 s bake
    expect(await governance("governance.canary-healthy")).toHaveLength(0);
    await feed(budgetEvaluationEvent("checkout", at(63), "normal"));
    const [proposal] = await eventually(async () => {
      const found = await proposals("promote-canary");
      return found.length > 0 ? found : undefined;
    }, "no promote-canary proposal after the bake");
    expect(proposal).toMatchObject({ state: "pending" });

    const approved = await post(
      `/v1/proposals/${proposal!.id}/approve`,
      { reason: "baked" },
      "approver",
    );
    expect(approved.statusCode, approved.body).toBe(200);
    const branch = `safedeploy/${proposal!.id}`;
    await eventually(async () => (await repo.branches())[branch], `${branch} was not pushed`);
    const manifest = await git(repo.remote, ["show", `${branch}:${MANIFEST}`]);
    const rollout = parse(manifest) as { spec: { strategy: { canary: { steps: object[] } } } };
    expect(rollout.spec.strategy.canary.steps[0]).toEqual({ setWeight: 50 });
    new Rollout(rollout).validate();

    // Argo Rollouts restarts the edited steps: step 0 at 50 is a new event and a new bake.
    const next = await post(
      "/v1/deploys",
      await fixture("rollouts-step-completed-setweight-50.json", at(70)),
    );
    expect(next.json()).toMatchObject({
      recorded: true,
      canary: { step: { weight: 50, next: 100 } },
    });
  });

  it("a burning canary gets its rollback proposal, and the incident names the deploy before the burn", async () => {
    await feed(
      budgetEvaluationEvent("checkout", at(240), "fast-burn", { burn1h: 20 }),
      budgetEvaluationEvent("checkout", at(241), "fast-burn", { burn1h: 20 }),
    );
    const [rollback] = await eventually(async () => {
      const found = await proposals("rollback-rollout");
      return found.length > 0 ? found : undefined;
    }, "no rollback proposal for the burning canary");
    expect(rollback).toBeDefined();
    const incidents = await get("/v1/incidents?service=checkout");
    const [incident] = incidents.json<{ items: { id: string }[] }>().items;
    const shown = await get(`/v1/incidents/${incident!.id}/deploy`);
    expect(shown.statusCode, shown.body).toBe(200);
    // The burn began with the first burning evaluation (its rollback plan says so); the latest
    // live deploy before it is the setWeight 50 step, 170 s earlier.
    expect(shown.json()).toMatchObject({
      burnBegan: at(240),
      deploy: { trigger: "on-rollout-step-completed", step: 0, at: at(70) },
      summary:
        "burn began 3 min after checkout revision 6d4f8b7c9d.5b8e2a9c4 step 0 completed a rollout step",
    });
    // On the incident as people read it: `safedeploy incidents show`.
    let stdout = "";
    const code = await runCli({
      argv: ["incidents", "show", incident!.id],
      env: { SAFEDEPLOY_API: url, SAFEDEPLOY_TOKEN: TOKENS.viewer },
      cwd: home,
      stdout: (text) => (stdout += text),
      stderr: () => undefined,
    });
    expect(code).toBe(0);
    expect(stdout).toContain(
      "deploy: burn began 3 min after checkout revision 6d4f8b7c9d.5b8e2a9c4 step 0 completed a rollout step",
    );
  });
});

describe("safedeploy canary report", () => {
  const cli = async (...argv: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await runCli({
      argv,
      env: { SAFEDEPLOY_API: url, SAFEDEPLOY_TOKEN: TOKENS.viewer },
      cwd: home,
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
    });
    return { code, stdout, stderr };
  };

  it("starts the bake of the N-th declared step through the API, and refuses undeclared ones", async () => {
    const reported = await cli("canary", "report", "checkout", "--step", "3", "--json");
    expect(reported.code, reported.stderr).toBe(0);
    expect(JSON.parse(reported.stdout)).toMatchObject({
      service: "checkout",
      weight: 100,
      next: null,
    });
    expect(await governance("governance.canary-step")).toContainEqual(
      expect.objectContaining({
        data: expect.objectContaining({ weight: 100, actor: "vera" }) as unknown,
      }),
    );
    const refused = await cli("canary", "report", "checkout", "--weight", "30");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("not a canary step");
    expect((await cli("canary", "report", "legacy", "--step", "1")).code).toBe(1);
    expect((await cli("canary", "report", "checkout")).code).toBe(2);
  });
});
