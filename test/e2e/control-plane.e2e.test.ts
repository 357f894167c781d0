// The whole control plane end to end, from a fresh state (new NATS namespace, new PostgreSQL
// database, new bare environment repo), everything real: a traffic exporter, a Prometheus scraping
// it every second, and every service in-process with startService (collector, budget, incident,
// policy, proposal, git-actuator, audit, gateway), driven only through the HTTP API with bearer
// tokens, the bare repo and the CLI:
//   1. healthy traffic → checkout normal, promotion allowed;
//   2. errors injected → an incident and a pending rollback proposal; the gate blocks;
//   3. an approver approves → a revert branch of checkout's part of the bad commit; mitigated;
//   4. errors stopped → resolved by the system after `resolveAfter` of normal;
//   5. the evidence bundle complete (API and `safedeploy evidence export`); the audit log intact.
// The catalog (test/fixtures/catalog/e2e) shortens the policy's windows to seconds. Step timings
// are written to node_modules/.cache/safedeploy-e2e/control-plane-timings.json and to stdout, with
// what the collector, budget and audit services did (their metrics).
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import {
  createTestBus,
  createTestDatabase,
  createTestEnvRepo,
  git,
  readStream,
  startPrometheus,
  startTrafficExporter,
  testServiceEnv,
} from "@safedeploy/testing";
import { rolloutManifest } from "@safedeploy/demo";
import type {
  PrivatePrometheus,
  TestBus,
  TestEnvRepo,
  TestDatabase,
  TrafficExporter,
} from "@safedeploy/testing";
import { auditService } from "@safedeploy/service-audit";
import { budgetService } from "@safedeploy/service-budget";
import { collectorService } from "@safedeploy/service-collector";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { incidentService } from "@safedeploy/service-incident";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";

const CATALOG = new URL("../fixtures/catalog/e2e", import.meta.url).pathname;
const TIMINGS_DIR = new URL("../../node_modules/.cache/safedeploy-e2e/", import.meta.url).pathname;
const TOKENS = { viewer: "cp-e2e-viewer-token", approver: "cp-e2e-approver-token" } as const;
const NAMES = { viewer: "vic", approver: "ana" } as const;
const CHECKOUT = "envs/prod/checkout/rollout.yaml";
const CART = "envs/prod/cart/rollout.yaml";
/** Healthy traffic before the errors: keeps the budget from being spent (see the catalog). */
const HEALTHY_HISTORY_MS = 25_000;
/** The catalog's Policy `resolveAfter`. */
const RESOLVE_AFTER_MS = 5_000;
const POLL_MS = 500;

/** An Argo Rollouts manifest of `service` at `version`. */
const rollout = (service: string, version: string) =>
  rolloutManifest(service, `registry.example.com/shop/${service}:${version}`);

interface Reason {
  code: string;
  message: string;
}
interface Gate {
  allowed: boolean;
  reasons: Reason[];
}
interface Transition {
  from: string | null;
  to: string;
  at: string;
  actor: string;
  reason: string;
}
interface Incident {
  id: string;
  service: string;
  state: string;
  severity: string;
  class: string;
  transitions: Transition[];
}
interface Proposal {
  id: string;
  service: string;
  incidentId: string | null;
  kind: string;
  state: string;
  approvals: { by: string; at: string; reason: string }[];
  action: { branch: string; commit: string; prUrl: string | null; diff: string } | null;
}
interface ServiceDetail {
  severity: string | null;
  activeIncident: string | null;
  slos: { slo: string; severity: string; budgetRemaining: number | null }[];
  gate: Gate | null;
}
interface EvidencePart {
  items: { type?: string; data?: Record<string, unknown> }[];
  sources: {
    stream: string;
    seq: number;
    messageId: string | null;
    type: string | null;
    hash: string;
  }[];
}
type Evidence = Record<(typeof PARTS)[number], EvidencePart> & {
  incidentId: string;
  service: string;
};
const PARTS = ["decision", "slo", "budget", "proposal", "approval", "resolution"] as const;

let root = "";
let remote = "";
let repo: TestEnvRepo | undefined;
let badCommit = "";
let gatewayUrl = "";
let trafficStarted = 0;
let exporter: TrafficExporter | undefined;
let prometheus: PrivatePrometheus | undefined;
let harness: TestBus | undefined;
let database: TestDatabase | undefined;
const services: ServiceHandle[] = [];

/** What the steps found, for the steps after them. */
const found: { incident?: Incident; proposal?: Proposal; resolved?: Incident } = {};
const timings: { step: string; ms: number; atMs: number; note?: string }[] = [];
let testStarted = 0;
/** The answer to approving the executed proposal again (reported with the timings). */
let retriedApproval = "";

/** Records how long a step took (and when it ended, from the start of the test's traffic). */
function timed(step: string, since: number, note?: string) {
  timings.push({
    step,
    ms: Date.now() - since,
    atMs: Date.now() - testStarted,
    ...(note === undefined ? {} : { note }),
  });
}

async function api(
  method: "GET" | "POST",
  path: string,
  role: keyof typeof TOKENS = "viewer",
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${gatewayUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKENS[role]}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
}

async function get<T>(path: string): Promise<T> {
  const { status, body } = await api("GET", path);
  if (status !== 200) throw new Error(`GET ${path}: ${status} ${JSON.stringify(body)}`);
  return body as T;
}

/**
 * Polls `probe` until it returns something, or fails naming the step, what did not happen within
 * how long, the last thing seen (or the last error), and where the pipeline stood.
 */
async function waitFor<T>(
  step: string,
  what: string,
  timeoutMs: number,
  probe: () => Promise<{ value: T | undefined; seen: unknown }>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const { value, seen } = await probe();
      if (value !== undefined) return value;
      last = seen;
    } catch (error) {
      last = `error: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() > deadline) {
      const where = await Promise.all([pipelineVitals(), checkoutInJetStream()]).catch(
        (error: unknown) => `unknown (${String(error)})`,
      );
      throw new Error(
        `${step}: ${what} did not happen within ${timeoutMs / 1000} s; last seen: ${JSON.stringify(last).slice(0, 1_500)}; pipeline, JetStream: ${JSON.stringify(where)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * What the pipeline did so far, from each service's own metrics: snapshots published and jobs
 * skipped (collector), evaluations (budget), rows stored and the newest stored sequence per
 * stream (audit, which fills the read model the API serves). A step that waits in vain then says
 * where the pipeline stopped.
 */
async function pipelineVitals(): Promise<Record<string, unknown>> {
  const vitals: Record<string, unknown> = { now: new Date().toISOString() };
  for (const service of services) {
    for (const metric of await service.registry.getMetricsAsJSON()) {
      if (!/^safedeploy_(collector|budget|audit)_/.test(metric.name)) continue;
      for (const sample of metric.values) {
        const full = "metricName" in sample ? String(sample.metricName) : metric.name;
        if (full.endsWith("_bucket")) continue;
        const qualifier = Object.entries(sample.labels)
          .filter(([label]) => label !== "service")
          .map(([, value]) => value)
          .join(",");
        const key = `${full.replace("safedeploy_", "")}${qualifier === "" ? "" : `{${qualifier}}`}`;
        vitals[key] = sample.value;
      }
    }
  }
  return vitals;
}

/** What JetStream itself holds for checkout: its newest evaluation and any incident opened. */
async function checkoutInJetStream(): Promise<Record<string, unknown>> {
  if (harness === undefined) return {};
  const budget = (await readStream(harness.bus, "BUDGET")).filter(
    (e) => e.type === "budget.evaluated" && e.service === "checkout",
  );
  const newest = budget.at(-1);
  const incidents = (await readStream(harness.bus, "INCIDENTS")).filter(
    (e) => e.service === "checkout",
  );
  return {
    evaluations: budget.length,
    newest:
      newest?.type === "budget.evaluated"
        ? { evaluatedAt: newest.data.evaluatedAt, severity: newest.data.slos[0]?.severity }
        : null,
    incidentEvents: incidents.map((e) => e.type),
  };
}

/** A bare environment repo whose last commit on main releases checkout's bad v1.6.0 (and cart). */
async function createEnvRepo() {
  repo = await createTestEnvRepo("control-plane");
  remote = repo.remote;
  await repo.commit("Bootstrap prod: checkout v1.5.1, cart v2.0.0", {
    "README.md": "# prod environment, synced by Argo CD\n",
    [CHECKOUT]: rollout("checkout", "v1.5.1"),
    [CART]: rollout("cart", "v2.0.0"),
  });
  await repo.commit("checkout v1.5.2", { [CHECKOUT]: rollout("checkout", "v1.5.2") });
  await repo.commit("cart v2.0.1", { [CART]: rollout("cart", "v2.0.1") });
  badCommit = await repo.commit("Release train 42: checkout v1.6.0, cart v2.1.0", {
    [CHECKOUT]: rollout("checkout", "v1.6.0"),
    [CART]: rollout("cart", "v2.1.0"),
  });
}

beforeAll(async () => {
  testStarted = Date.now();
  root = await mkdtemp(join(tmpdir(), "sd-control-plane-"));
  // Traffic and Prometheus first: their history builds while the rest starts.
  exporter = await startTrafficExporter({
    checkout: { rps: 200, errorRatio: 0 },
    cart: { rps: 100, errorRatio: 0 },
  });
  trafficStarted = Date.now();
  prometheus = await startPrometheus({ scrape: [{ jobName: "shop", targets: [exporter.target] }] });
  await createEnvRepo();
  const tokens = join(root, "tokens.yaml");
  await writeFile(
    tokens,
    (["viewer", "approver"] as const)
      .map(
        (role) => `- name: ${NAMES[role]}\n  role: ${role}\n  sha256: ${tokenHash(TOKENS[role])}\n`,
      )
      .join(""),
  );
  harness = await createTestBus();
  await provision(harness.bus);
  database = await createTestDatabase();
  const env = testServiceEnv(harness, {
    DATABASE_URL: database.url,
    PROMETHEUS_URL: prometheus.url,
    SAFEDEPLOY_CATALOG: CATALOG,
    SAFEDEPLOY_POLL_INTERVAL: "1s",
    SAFEDEPLOY_ENV_REPO: remote,
    SAFEDEPLOY_ENV_BRANCH: "main",
    SAFEDEPLOY_FORGE: "git",
    SAFEDEPLOY_HOME: join(root, "home"),
    SAFEDEPLOY_TOKENS: tokens,
    GATEWAY_HOST: "127.0.0.1",
    GATEWAY_PORT: "0",
  });
  const started = Date.now();
  services.push(
    await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), { env }),
  );
  for (const definition of [policyService, incidentService, proposalService]) {
    services.push(await startService(definition, { env }));
  }
  services.push(await startService(createGitActuatorService({ env }), { env }));
  services.push(
    await startService(
      createGatewayService({
        events: { pollMs: 250, heartbeatMs: 5_000 },
        onListening: (url) => (gatewayUrl = url),
      }),
      { env },
    ),
  );
  services.push(await startService(budgetService, { env }));
  services.push(await startService(collectorService, { env }));
  timed("start: Prometheus, env repo, NATS, PostgreSQL and the 8 services", testStarted);
  timed("start: the 8 services alone", started);
  expect(gatewayUrl, "the gateway did not report its URL").toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
}, 60_000);

afterAll(async () => {
  const summary = timings
    .map(
      (t) =>
        `  ${t.step}: ${(t.ms / 1000).toFixed(1)} s (at +${(t.atMs / 1000).toFixed(1)} s)` +
        (t.note === undefined ? "" : ` ${t.note}`),
    )
    .join("\n");
  const pipeline = await pipelineVitals();
  process.stdout.write(
    `control-plane e2e step timings:\n${summary}\n  approving the executed proposal again: ${retriedApproval}\n  pipeline: ${JSON.stringify(pipeline)}\n`,
  );
  await mkdir(TIMINGS_DIR, { recursive: true });
  await writeFile(
    join(TIMINGS_DIR, "control-plane-timings.json"),
    `${JSON.stringify({ at: new Date().toISOString(), timings, retriedApproval, pipeline }, null, 2)}\n`,
  );
  for (const service of services.reverse()) await service.shutdown("test");
  await harness?.cleanup();
  await database?.drop();
  await prometheus?.dispose();
  await exporter?.close();
  if (root !== "") await rm(root, { recursive: true, force: true });
  await repo?.dispose();
});

describe("the control plane end to end: burn → incident → approved rollback → resolved", () => {
  it("1. healthy traffic: checkout is normal and may be promoted", async () => {
    const since = Date.now();
    const states: string[] = [];
    const detail = await waitFor(
      "step 1 (healthy)",
      "GET /v1/services/checkout showing severity normal with the gate allowed",
      45_000,
      async () => {
        const body = await get<ServiceDetail>("/v1/services/checkout");
        const state = `${body.severity ?? "none"}/${String(body.gate?.allowed)}`;
        if (states.at(-1) !== state) states.push(state);
        return {
          value: body.severity === "normal" && body.gate?.allowed === true ? body : undefined,
          seen: { severity: body.severity, slos: body.slos, gate: body.gate },
        };
      },
    );
    timed("1. healthy → normal and allowed", since, `states seen: ${states.join(" → ")}`);
    expect(detail.activeIncident).toBeNull();
    expect(detail.slos).toMatchObject([{ slo: "availability", severity: "normal" }]);
    const gate = await get<Gate>("/v1/services/checkout/gate");
    expect(gate, "GET /v1/services/checkout/gate").toMatchObject({ allowed: true, reasons: [] });
    // Without a token the API refuses.
    expect((await fetch(`${gatewayUrl}/v1/services/checkout`)).status).toBe(401);

    // Healthy history before the errors, so the budget outlasts the burn (see the catalog).
    const waited = Date.now();
    const wait = HEALTHY_HISTORY_MS - (Date.now() - trafficStarted);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    timed(`1b. waiting for ${HEALTHY_HISTORY_MS / 1000} s of healthy history`, waited);
  }, 75_000);

  it("2. errors injected: an incident and a pending rollback proposal appear; the gate blocks", async () => {
    const since = Date.now();
    exporter!.setTraffic("checkout", { rps: 200, errorRatio: 0.8 });
    const incident = await waitFor(
      "step 2 (errors injected)",
      "an open incident at GET /v1/incidents?service=checkout",
      30_000,
      async () => {
        const { items } = await get<{ items: Incident[] }>("/v1/incidents?service=checkout");
        const severity = (await get<ServiceDetail>("/v1/services/checkout")).slos;
        return {
          value: items.find((i) => i.state === "detected"),
          seen: { items, severity },
        };
      },
    );
    timed("2a. errors → incident visible", since, `${incident.id} ${incident.severity}`);
    expect(incident).toMatchObject({ service: "checkout", severity: "fast-burn" });
    expect(incident.class).toMatch(/^P[0-3]$/);
    expect(incident.transitions[0]).toMatchObject({ from: null, to: "detected", actor: "system" });

    const proposal = await waitFor(
      "step 2 (errors injected)",
      `a pending rollback-rollout proposal for ${incident.id} at GET /v1/proposals?service=checkout`,
      20_000,
      async () => {
        const { items } = await get<{ items: Proposal[] }>("/v1/proposals?service=checkout");
        return {
          value: items.find(
            (p) =>
              p.kind === "rollback-rollout" &&
              p.state === "pending" &&
              p.incidentId === incident.id,
          ),
          seen: items.map((p) => ({ id: p.id, kind: p.kind, state: p.state, inc: p.incidentId })),
        };
      },
    );
    timed("2b. errors → rollback proposal pending", since, proposal.id);
    expect(proposal).toMatchObject({ service: "checkout", approvals: [], action: null });

    const gate = await waitFor(
      "step 2 (errors injected)",
      "GET /v1/services/checkout/gate blocking with burn-rate-high or a budget reason",
      15_000,
      async () => {
        const body = await get<Gate>("/v1/services/checkout/gate");
        const blocking = body.reasons.some((r) =>
          ["burn-rate-high", "budget-exhausted", "low-margin"].includes(r.code),
        );
        return { value: !body.allowed && blocking ? body : undefined, seen: body };
      },
    );
    timed("2c. errors → gate blocked", since, gate.reasons.map((r) => r.code).join(","));
    const detail = await get<ServiceDetail>("/v1/services/checkout");
    expect(detail.activeIncident).toBe(incident.id);
    found.incident = incident;
    found.proposal = proposal;
  }, 75_000);

  it("3. approving through the API pushes a revert branch of checkout's part only; mitigated", async () => {
    const { incident, proposal } = found;
    if (incident === undefined || proposal === undefined) {
      throw new Error("step 3 needs the incident and proposal of step 2, which did not appear");
    }
    const since = Date.now();
    // A viewer may not approve.
    expect(
      (await api("POST", `/v1/proposals/${proposal.id}/approve`, "viewer", { reason: "no" }))
        .status,
    ).toBe(403);
    const answer = await api("POST", `/v1/proposals/${proposal.id}/approve`, "approver", {
      reason: "checkout 5xx since v1.6.0: roll it back",
    });
    expect(answer.status, `approve: ${JSON.stringify(answer.body)}`).toBe(200);
    const approved = answer.body as Proposal;
    expect(["approved", "executed"]).toContain(approved.state);
    expect(approved.approvals).toHaveLength(1);
    expect(approved.approvals[0]?.by).toContain(NAMES.approver);

    const executed = await waitFor(
      "step 3 (approved)",
      `${proposal.id} executed with an action (the git actuator's branch)`,
      30_000,
      async () => {
        const body = await get<Proposal>(`/v1/proposals/${proposal.id}`);
        return {
          value: body.state === "executed" && body.action !== null ? body : undefined,
          seen: body,
        };
      },
    );
    timed("3a. approve → proposal executed", since, executed.action?.branch);
    const branch = `safedeploy/${proposal.id}`;
    expect(executed.action).toMatchObject({ branch, prUrl: null });
    const commitId = executed.action!.commit;
    expect(commitId).toMatch(/^[0-9a-f]{40}$/);

    // The branch in the bare environment repo, on top of the bad commit, main untouched.
    expect(await git(remote, ["rev-parse", `refs/heads/${branch}`])).toBe(commitId);
    expect(await git(remote, ["rev-parse", "refs/heads/main"])).toBe(badCommit);
    expect(await git(remote, ["rev-parse", `${commitId}^`])).toBe(badCommit);
    const message = await git(remote, ["log", "-1", "--format=%B", commitId]);
    const trailers = await git(remote, ["log", "-1", "--format=%(trailers:only,unfold)", commitId]);
    expect(trailers, `commit message:\n${message}`).toContain(
      `SafeDeploy-Proposal: ${proposal.id}`,
    );
    expect(trailers, `commit message:\n${message}`).toContain(
      `SafeDeploy-Incident: ${incident.id}`,
    );
    expect(message.split("\n")[0]).toBe(
      `Revert envs/prod/checkout to before ${badCommit.slice(0, 12)}`,
    );
    expect(message).toContain(`Reverts the part of ${badCommit}`);
    // Only checkout's part of the release commit is reverted: cart keeps v2.1.0.
    expect(await git(remote, ["diff", "--name-only", badCommit, commitId])).toBe(CHECKOUT);
    expect(await git(remote, ["show", `${commitId}:${CHECKOUT}`])).toBe(
      rollout("checkout", "v1.5.2").trim(),
    );
    expect(await git(remote, ["show", `${commitId}:${CART}`])).toBe(
      rollout("cart", "v2.1.0").trim(),
    );
    expect(executed.action!.diff).toContain(
      '-          image: "registry.example.com/shop/checkout:v1.6.0"',
    );
    expect(executed.action!.diff).toContain(
      '+          image: "registry.example.com/shop/checkout:v1.5.2"',
    );
    expect(executed.action!.diff).not.toContain("cart");

    const mitigated = await waitFor(
      "step 3 (approved)",
      `${incident.id} mitigated by the executed rollback`,
      20_000,
      async () => {
        const body = await get<Incident>(`/v1/incidents/${incident.id}`);
        return { value: body.state === "mitigated" ? body : undefined, seen: body };
      },
    );
    timed("3b. approve → incident mitigated", since);
    expect(mitigated.transitions.at(-1)).toMatchObject({ to: "mitigated", actor: "system" });
    expect(mitigated.transitions.at(-1)?.reason).toContain(proposal.id);

    // The same approver retrying the approval (say, after a lost response) gets the proposal
    // back unchanged, even once the actuator executed it: no second approval, no second branch.
    const again = await api("POST", `/v1/proposals/${proposal.id}/approve`, "approver", {
      reason: "checkout 5xx since v1.6.0: roll it back",
    });
    retriedApproval = `${again.status} ${JSON.stringify(again.body).slice(0, 200)}`;
    expect(again.status, `approve again: ${retriedApproval}`).toBe(200);
    const after = await get<Proposal>(`/v1/proposals/${proposal.id}`);
    expect(after).toMatchObject({ state: "executed", action: { branch, commit: commitId } });
    expect(after.approvals).toHaveLength(1);
    expect(
      await git(remote, ["for-each-ref", "--format=%(refname)", "refs/heads/safedeploy"]),
    ).toBe(`refs/heads/${branch}`);
  }, 75_000);

  it("4. errors stopped: the system resolves the incident after resolveAfter of normal", async () => {
    const { incident } = found;
    if (incident === undefined) throw new Error("step 4 needs the incident of step 2");
    const since = Date.now();
    exporter!.setTraffic("checkout", { rps: 200, errorRatio: 0 });
    const resolved = await waitFor(
      "step 4 (errors stopped)",
      `${incident.id} resolved by the system (normal for ${RESOLVE_AFTER_MS / 1000} s after mitigation)`,
      45_000,
      async () => {
        const body = await get<Incident>(`/v1/incidents/${incident.id}`);
        const service = await get<ServiceDetail>("/v1/services/checkout");
        return {
          value: body.state === "resolved" ? body : undefined,
          seen: { state: body.state, slos: service.slos },
        };
      },
    );
    timed("4. errors stopped → incident resolved", since);
    const last = resolved.transitions.at(-1)!;
    expect(last).toMatchObject({ from: "mitigated", to: "resolved", actor: "system" });
    const normalSince = /every SLO's burn normal since (\S+)/.exec(last.reason)?.[1];
    expect(normalSince, `resolution reason: ${last.reason}`).toBeDefined();
    expect(Date.parse(last.at) - Date.parse(normalSince!)).toBeGreaterThanOrEqual(RESOLVE_AFTER_MS);
    expect(resolved.transitions.map((t) => t.to)).toEqual(["detected", "mitigated", "resolved"]);
    const detail = await get<ServiceDetail>("/v1/services/checkout");
    expect(detail.activeIncident).toBeNull();
    expect(detail.severity).toBe("normal");

    // Healthy again with most of the budget left: promotion is allowed again, and no proposal of
    // checkout is left pending (the block-promotion ones of the burn are superseded).
    const allowedAgain = await waitFor(
      "step 4 (errors stopped)",
      "GET /v1/services/checkout/gate allowing promotion again and no pending checkout proposal",
      20_000,
      async () => {
        const gate = await get<Gate>("/v1/services/checkout/gate");
        const { items } = await get<{ items: Proposal[] }>(
          "/v1/proposals?service=checkout&state=pending",
        );
        return {
          value: gate.allowed && items.length === 0 ? gate : undefined,
          seen: { gate, pending: items.map((p) => ({ id: p.id, kind: p.kind })) },
        };
      },
    );
    const remaining = (await get<ServiceDetail>("/v1/services/checkout")).slos[0]?.budgetRemaining;
    timed(
      "4b. errors stopped → gate allowed, nothing pending",
      since,
      `budget left ${String(remaining)}`,
    );
    expect(allowedAgain.reasons).toEqual([]);
    // cart, healthy all along, never had an incident.
    expect((await get<{ items: Incident[] }>("/v1/incidents?service=cart")).items).toEqual([]);
    found.resolved = resolved;
  }, 60_000);

  it("5. the evidence bundle is complete (API and CLI export) and the audit log intact", async () => {
    const { incident, proposal, resolved } = found;
    if (incident === undefined || proposal === undefined || resolved === undefined) {
      throw new Error("step 5 needs the incident resolved in step 4");
    }
    const since = Date.now();
    // The audit log is written asynchronously; wait until it holds the resolution too.
    const bundle = await waitFor(
      "step 5 (evidence)",
      `GET /v1/incidents/${incident.id}/evidence holding all six parts, with the resolution`,
      20_000,
      async () => {
        const body = await get<Evidence>(`/v1/incidents/${incident.id}/evidence`);
        const sizes = Object.fromEntries(PARTS.map((p) => [p, body[p].items.length]));
        const complete =
          PARTS.every((p) => body[p].items.length > 0) &&
          body.resolution.items.some((i) => i.data?.to === "resolved");
        return { value: complete ? body : undefined, seen: sizes };
      },
    );
    timed("5a. evidence bundle complete in the API", since);
    expect(bundle).toMatchObject({ incidentId: incident.id, service: "checkout" });
    for (const part of PARTS) {
      const { items, sources } = bundle[part];
      expect(sources, `${part}: a source per item`).toHaveLength(items.length);
      for (const source of sources) {
        expect(source.messageId, `${part}: message id`).toMatch(/\S/);
        expect(source.hash, `${part}: audit hash`).toMatch(/^[0-9a-f]{64}$/);
      }
    }
    const types = (part: (typeof PARTS)[number]) =>
      new Set(bundle[part].sources.map((s) => s.type));
    expect([...types("decision")]).toContain("incidents.opened");
    expect([...types("slo")]).toEqual(["metrics.snapshot"]);
    expect([...types("budget")]).toEqual(["budget.evaluated"]);
    // One evaluation of the service per interval, an entry per SLO.
    const sloSeverities = bundle.budget.items.flatMap((i) =>
      Array.isArray(i.data?.slos) ? (i.data.slos as { severity?: unknown }[]) : [],
    );
    expect(sloSeverities.some((slo) => slo.severity === "fast-burn")).toBe(true);
    expect([...types("proposal")]).toContain("governance.proposal-created");
    expect(bundle.proposal.items.some((i) => i.data?.proposalId === proposal.id)).toBe(true);
    expect([...types("approval")]).toEqual(["governance.proposal-approved"]);
    expect(JSON.stringify(bundle.approval.items)).toContain(NAMES.approver);
    expect([...types("resolution")]).toEqual(
      expect.arrayContaining(["incidents.transitioned", "governance.action-completed"]),
    );
    expect(bundle.resolution.items.map((i) => i.data?.to).filter(Boolean)).toEqual([
      "mitigated",
      "resolved",
    ]);

    const cli = async (...argv: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await runCli({
        argv,
        // NATS too: the audit log's tails are checked against what JetStream says was stored.
        env: testServiceEnv(harness!, { DATABASE_URL: database!.url }),
        cwd: root,
        stdout: (text) => (stdout += text),
        stderr: (text) => (stderr += text),
      });
      return { code, stdout, stderr };
    };
    const exported = await cli("evidence", "export", incident.id, "--out", "evidence");
    expect(exported, "safedeploy evidence export").toMatchObject({ code: 0, stderr: "" });
    const dir = join(root, "evidence", `incident-${incident.id}`);
    expect((await readdir(dir)).sort()).toEqual(PARTS.map((p) => `${p}.json`).sort());
    for (const part of PARTS) {
      const file = JSON.parse(await readFile(join(dir, `${part}.json`), "utf8")) as EvidencePart;
      expect(file.items.length, `${part}.json items`).toBeGreaterThan(0);
      expect(file.sources, `${part}.json sources`).toHaveLength(file.items.length);
    }

    const verified = await cli("audit", "verify");
    expect(verified, "safedeploy audit verify").toMatchObject({ code: 0, stderr: "" });
    expect(verified.stdout).toMatch(
      /^audit log intact: \d+ rows, every stream's chain verified; tails of BUDGET, DEADLETTER, GOVERNANCE, INCIDENTS, METRICS checked against JetStream/,
    );
    const report = await get<{ intact: boolean; rows: number; firstBad: unknown }>(
      "/v1/audit/verify",
    );
    expect(report).toMatchObject({
      intact: true,
      firstBad: null,
      anchored: ["BUDGET", "DEADLETTER", "GOVERNANCE", "INCIDENTS", "METRICS"],
    });
    expect(report.rows).toBeGreaterThan(0);
    timed("5b. evidence exported, audit verified", since);
  }, 45_000);
});
