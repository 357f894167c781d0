/**
 * The git actuator with SAFEDEPLOY_FORGE=github, against real NATS, a real bare git remote and a
 * LOCAL STAND-IN for GitHub's REST API (a `node:http` server following GitHub's documented shapes
 * for listing and creating pull requests and adding labels; a real GitHub cannot be reached here).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId, qualifiedName } from "@safedeploy/schema";
import type { Envelope } from "@safedeploy/schema";
import { createTestBus, readStream, recordProposal, testServiceEnv } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { createGitActuatorService } from "../src/service.js";

const exec = promisify(execFile);
const git = (cwd: string, args: string[]) =>
  exec("git", args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Dev",
      GIT_AUTHOR_EMAIL: "d@x",
      GIT_COMMITTER_NAME: "Dev",
      GIT_COMMITTER_EMAIL: "d@x",
    },
  });

const TOKEN = "ghp_actuatortest0123456789";
let root: string;
let harness: TestBus;
let server: Server;
const replicas: ServiceHandle[] = [];
const pulls: { number: number; head: string; base: string; body: string; labels: string[] }[] = [];
let creates = 0;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body =
    chunks.length === 0
      ? {}
      : (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
  const url = new URL(req.url ?? "/", "http://localhost");
  const send = (status: number, json: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(json));
  };
  const view = (p: (typeof pulls)[number]) => ({
    number: p.number,
    state: "open",
    html_url: `https://github.example/acme/env/pull/${p.number}`,
    head: { ref: p.head },
  });
  if (req.headers.authorization !== `token ${TOKEN}`) {
    send(401, { message: "Bad credentials" });
    return;
  }
  if (url.pathname === "/repos/acme/env/pulls" && req.method === "GET") {
    send(200, pulls.filter((p) => `acme:${p.head}` === url.searchParams.get("head")).map(view));
    return;
  }
  if (url.pathname === "/repos/acme/env/pulls" && req.method === "POST") {
    creates++;
    if (pulls.some((p) => p.head === body.head)) {
      send(422, {
        message: "Validation Failed",
        errors: [{ message: "A pull request already exists" }],
      });
      return;
    }
    const pull = {
      number: pulls.length + 1,
      head: String(body.head),
      base: String(body.base),
      body: String(body.body),
      labels: [],
    };
    pulls.push(pull);
    send(201, view(pull));
    return;
  }
  const labels = /^\/repos\/acme\/env\/issues\/(\d+)\/labels$/.exec(url.pathname);
  const pull = pulls.find((p) => p.number === Number(labels?.[1]));
  if (labels !== null && pull !== undefined && req.method === "POST") {
    for (const name of body.labels as string[])
      if (!pull.labels.includes(name)) pull.labels.push(name);
    send(
      200,
      pull.labels.map((name) => ({ name })),
    );
    return;
  }
  send(404, { message: "Not Found" });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sd-actuator-gh-"));
  const remote = join(root, "env.git");
  const seed = join(root, "seed");
  await git(root, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  await git(root, ["clone", "--quiet", remote, seed]);
  await git(seed, ["checkout", "--quiet", "-B", "main"]);
  for (const [message, image] of [
    ["initial", "v1"],
    ["checkout v2", "v2"],
  ] as const) {
    const file = join(seed, "envs/prod/checkout/rollout.yaml");
    await mkdir(dirname(file), { recursive: true });
    await writeFile(
      file,
      `kind: Rollout\nmetadata: { name: checkout }\nspec:\n  image: shop/checkout:${image}\n`,
    );
    await git(seed, ["add", "--all"]);
    await git(seed, ["commit", "--quiet", "-m", message]);
  }
  await git(seed, ["push", "--quiet", "origin", "main"]);
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  harness = await createTestBus();
  await provision(harness.bus);
  const env = testServiceEnv(harness, {
    SAFEDEPLOY_ENV_REPO: remote,
    SAFEDEPLOY_HOME: join(root, "home"),
    SAFEDEPLOY_FORGE: "github",
    GITHUB_TOKEN: TOKEN,
    GITHUB_REPOSITORY: "acme/env",
    GITHUB_API_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  });
  for (let i = 0; i < 2; i++)
    replicas.push(await startService(createGitActuatorService({ env }), { env }));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.shutdown("test")));
  await harness.cleanup();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

it("opens one labelled pull request for an approved rollback, however often the approval arrives", async () => {
  const at = "2026-11-24T11:00:00.000Z";
  const action: Envelope<"governance.action-requested"> = createEnvelope(
    {
      type: "governance.action-requested",
      id: messageId("governance.action-requested", "PRP-GH"),
      service: "checkout",
      data: {
        proposalId: "PRP-GH",
        kind: "rollback-rollout",
        incidentId: "INC-1",
        requestedAt: at,
        plan: { action: "git-revert", path: "envs/prod/checkout" },
      },
    },
    { source: "proposal", time: at },
  );
  await recordProposal(harness.bus, action);
  await Promise.all([
    publishEvent(harness.bus, action),
    publishEvent(harness.bus, { ...action, id: `${action.id}:again-1` }),
    publishEvent(harness.bus, { ...action, id: `${action.id}:again-2` }),
  ]);
  const stream = qualifiedName(harness.bus.ns, "GOVERNANCE");
  const durable = qualifiedName(harness.bus.ns, "git-actuator");
  let completed: Envelope[] = [];
  for (let i = 0; i < 400; i++) {
    const info = await harness.bus.jsm.consumers.info(stream, durable);
    completed = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.action-completed",
    );
    if (completed.length > 0 && info.num_pending === 0 && info.num_ack_pending === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(completed).toHaveLength(1);
  expect(completed[0]?.data).toMatchObject({
    proposalId: "PRP-GH",
    branch: "safedeploy/PRP-GH",
    prUrl: "https://github.example/acme/env/pull/1",
  });
  expect(pulls).toEqual([
    {
      number: 1,
      head: "safedeploy/PRP-GH",
      base: "main",
      body: expect.stringContaining("for incident **INC-1**") as string,
      labels: ["safedeploy", "rollback-rollout"],
    },
  ]);
  expect(creates).toBeGreaterThanOrEqual(1);
});
