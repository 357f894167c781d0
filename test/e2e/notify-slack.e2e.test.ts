import { createHmac } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import { join } from "node:path";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { auditService } from "@safedeploy/service-audit";
import { createGatewayService, parseSlackUsers } from "@safedeploy/service-gateway";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { createNotifierService } from "@safedeploy/service-notifier";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import {
  closeServers,
  createTestBus,
  createTestDatabase,
  budgetEvaluationEvent,
  createTestEnvRepo,
  incidentOpenedEvent,
  listenLocal,
  readStream,
  serviceYaml,
  testServiceEnv,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase, TestEnvRepo } from "@safedeploy/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SIGNING_SECRET = "a-slack-signing-secret-for-tests";
// The users file, as docs/slack.md shows it: Slack user id → SafeDeploy identity and role.
const USERS = `- { slackUserId: U0ANA, name: ana, role: approver }
- { slackUserId: U0BOB, name: bob, role: admin }
- { slackUserId: U0VERA, name: vera, role: viewer }
`;

interface SlackPost {
  readonly path: string;
  readonly json: { text?: string; replace_original?: boolean; blocks?: Record<string, unknown>[] };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Slack, as far as this test needs it: an incoming webhook and response_urls, answering "ok". */
function fakeSlack(posts: SlackPost[]): Server {
  return createServer((request, response) => {
    void readBody(request).then((text) => {
      posts.push({ path: request.url ?? "/", json: JSON.parse(text) as SlackPost["json"] });
      response.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
  });
}

/** The rollback's announcement on the channel's incoming webhook. */
const isAnnouncement = (p: SlackPost) =>
  p.path === "/services/T0/B0/hook" && p.json.text?.includes("(rollback-rollout)") === true;

async function eventually(
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("Slack: Block Kit approvals and the signed interactivity endpoint", () => {
  let harness: TestBus;
  let database: TestDatabase;
  let repo: TestEnvRepo;
  let slackBase: string;
  let gatewayUrl = "";
  const servers: Server[] = [];
  const services: ServiceHandle[] = [];
  const posts: SlackPost[] = [];

  /** Presses a button of the announced message as `user`, signed as Slack signs (or not). */
  const press = async (
    user: string,
    actionId: "approve" | "reject",
    proposalId: string,
    options: { secret?: string; age?: number } = {},
  ) => {
    const announcement = posts.find(isAnnouncement);
    const payload = {
      type: "block_actions",
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: "T0" },
      api_app_id: "A0",
      token: "legacy-verification-token",
      container: { type: "message", message_ts: "1700000000.000100", channel_id: "C0" },
      trigger_id: "1.2.3",
      team: { id: "T0", domain: "shop" },
      channel: { id: "C0", name: "deploys" },
      message: {
        type: "message",
        ts: "1700000000.000100",
        blocks: announcement?.json.blocks ?? [],
      },
      response_url: `${slackBase}/actions/T0/1/${user}`,
      actions: [
        {
          type: "button",
          action_id: actionId,
          block_id: `proposal:${proposalId}`,
          value: proposalId,
          text: { type: "plain_text", text: actionId },
          action_ts: "1700000001.000200",
        },
      ],
    };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const ts = String(Math.floor(Date.now() / 1000) - (options.age ?? 0));
    const signature = `v0=${createHmac("sha256", options.secret ?? SIGNING_SECRET)
      .update(`v0:${ts}:${body}`)
      .digest("hex")}`;
    return fetch(`${gatewayUrl}/slack/interactivity`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": signature,
      },
      body,
    });
  };

  beforeAll(async () => {
    repo = await createTestEnvRepo("notify-slack");
    await repo.commit("checkout v1", { "envs/prod/checkout/rollout.yaml": "image: checkout:v1\n" });
    await repo.commit("checkout v2", { "envs/prod/checkout/rollout.yaml": "image: checkout:v2\n" });
    const slack = fakeSlack(posts);
    servers.push(slack);
    slackBase = await listenLocal(slack);
    await writeFile(join(repo.root, "slack-url"), `${slackBase}/services/T0/B0/hook\n`);
    await writeFile(join(repo.root, "users.yaml"), USERS);
    const catalog = [
      "apiVersion: safedeploy.dev/v1\nkind: Policy\nmetadata: { name: default }\nspec:\n  requireCanary: false\n  approvals: { required: 2 }\n",
      serviceYaml("checkout"),
      `apiVersion: safedeploy.dev/v1
kind: Notifier
metadata: { name: deploys-channel }
spec:
  type: slack
  urlFile: ${join(repo.root, "slack-url")}
  events: [proposal.created, proposal.approved, proposal.executed]
`,
    ].join("\n---\n");
    await writeFile(join(repo.root, "catalog.yaml"), catalog);
    harness = await createTestBus();
    await provision(harness.bus);
    database = await createTestDatabase();
    const env = testServiceEnv(harness, {
      DATABASE_URL: database.url,
      SAFEDEPLOY_CATALOG: join(repo.root, "catalog.yaml"),
      SAFEDEPLOY_ENV_REPO: repo.remote,
      SAFEDEPLOY_ENV_BRANCH: "main",
      SAFEDEPLOY_FORGE: "git",
      SAFEDEPLOY_HOME: join(repo.root, "home"),
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
    });
    services.push(
      await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), { env }),
    );
    for (const definition of [policyService, proposalService]) {
      services.push(await startService(definition, { env }));
    }
    services.push(await startService(createGitActuatorService({ env }), { env }));
    services.push(
      await startService(
        createNotifierService({ publicUrl: "https://sd.example", retryScheduleMs: [200] }),
        { env },
      ),
    );
    services.push(
      await startService(
        createGatewayService({
          slack: {
            signingSecret: SIGNING_SECRET,
            users: parseSlackUsers(USERS),
            responseOrigins: [slackBase],
          },
          onListening: (url) => (gatewayUrl = url),
        }),
        { env },
      ),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(services.map((s) => s.shutdown("test")));
    await closeServers(servers);
    await harness.cleanup();
    await database.drop();
    await repo.dispose();
  });

  it("answers hostile bodies with 401 unsigned and 400 naming the field signed, never a 5xx", async () => {
    const body = fc.oneof(
      fc.string(),
      fc.json().map((json) => `payload=${encodeURIComponent(json)}`),
      fc
        .record({ type: fc.constantFrom("block_actions", "view_submission"), user: fc.anything() })
        .map((p) => `payload=${encodeURIComponent(JSON.stringify(p))}`),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (text, signed) => {
        const ts = String(Math.floor(Date.now() / 1000));
        const mac = createHmac("sha256", SIGNING_SECRET).update(`v0:${ts}:${text}`).digest("hex");
        const answer = await fetch(`${gatewayUrl}/slack/interactivity`, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts,
            "x-slack-signature": signed ? `v0=${mac}` : `v0=${"0".repeat(64)}`,
          },
          body: text,
        });
        if (!signed) {
          expect(answer.status).toBe(401);
          expect(await answer.text()).toBe("");
          return;
        }
        expect(answer.status).toBe(400);
        const error = (await answer.json()) as { details: { path: string }[] };
        expect(error.details[0]?.path).toMatch(/^payload/);
      }),
      { numRuns: 40 },
    );
  });

  it("announces the proposal with its diff and buttons, then approves as the mapped people", async () => {
    const now = new Date().toISOString();
    // The burning evaluation that opened the incident, as the budget service publishes it.
    await publishEvent(
      harness.bus,
      budgetEvaluationEvent("checkout", now, "fast-burn", { budgetRemaining: 0.42, burn1h: 15 }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    await publishEvent(harness.bus, incidentOpenedEvent("checkout", "INC-1", now));
    await eventually(() => posts.some(isAnnouncement), 30_000);
    const announced = posts.find(isAnnouncement)!.json;
    const blocks = JSON.stringify(announced.blocks);
    for (const part of [
      "checkout",
      "availability",
      "fast-burn",
      "42.0% left",
      "-image: checkout:v2",
      "+image: checkout:v1",
    ]) {
      expect(blocks).toContain(part);
    }
    const actions = announced.blocks!.find((b) => b.type === "actions") as {
      elements: { action_id: string; value?: string }[];
    };
    const proposalId = actions.elements[0]!.value!;
    expect(actions.elements.map((e) => e.action_id)).toEqual(["approve", "reject", "open"]);

    // Refusals first: bad signature, stale request, unknown user, a viewer.
    expect((await press("U0ANA", "approve", proposalId, { secret: "wrong" })).status).toBe(401);
    expect((await press("U0ANA", "approve", proposalId, { age: 301 })).status).toBe(401);
    expect((await press("U0NOBODY", "approve", proposalId)).status).toBe(403);
    expect((await press("U0VERA", "approve", proposalId)).status).toBe(403);

    const first = await press("U0ANA", "approve", proposalId);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ ok: true, proposal: proposalId, state: "pending" });
    // The same person again does not make two approvals.
    expect(await (await press("U0ANA", "approve", proposalId)).json()).toMatchObject({
      state: "pending",
    });
    await eventually(
      () => posts.some((p) => p.path === "/actions/T0/1/U0ANA" && p.json.replace_original === true),
      10_000,
    );
    const update = posts.find(
      (p) => p.path === "/actions/T0/1/U0ANA" && p.json.replace_original === true,
    )!.json;
    expect(update.text).toBe(
      `Approved by ana from Slack: ${proposalId} is pending (1 of 2 approvals)`,
    );
    expect(update.blocks!.some((b) => b.type === "actions")).toBe(false);

    const second = await press("U0BOB", "approve", proposalId);
    expect(await second.json()).toEqual({ ok: true, proposal: proposalId, state: "approved" });
    await eventually(() => posts.some((p) => p.json.text?.includes("executed") === true), 30_000);
    const approvals = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.proposal-approved",
    );
    expect(approvals.map((e) => (e.data as { by: string }).by)).toEqual(["ana", "bob"]);
    expect(Object.keys(await repo.branches())).toEqual([`safedeploy/${proposalId}`]);
    // Too late to reject: refused as through the API, and told to the person who pressed it.
    const late = await press("U0ANA", "reject", proposalId);
    expect(late.status).toBe(409);
    await eventually(
      () => posts.some((p) => p.json.text?.startsWith(`Could not reject ${proposalId}`) === true),
      10_000,
    );
    // Announced, approved, executed: one message each on the channel, about this proposal.
    const about = posts.filter(
      (p) => p.path === "/services/T0/B0/hook" && p.json.text?.includes(proposalId) === true,
    );
    expect(
      about.map((p) => /(rollback-rollout|approved|executed)/.exec(p.json.text ?? "")?.[1]),
    ).toEqual(["rollback-rollout", "approved", "executed"]);
  });
});
