import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectBus,
  consumeEvents,
  consumerConfig,
  openKv,
  provision,
  publishEvent,
  requestCommand,
  serveCommand,
} from "@safedeploy/jetstream";
import type { Bus, CommandServer, Settled, Subscription } from "@safedeploy/jetstream";
import {
  DEFAULT_NAMESPACE,
  ProposalRecord,
  ResourceName,
  SAFEDEPLOY_TOPOLOGY,
  SERVICE_ACCESS,
  SERVICE_USERS,
  createEnvelope,
  natsPermissionsConfig,
  passwordVariable,
  servicePermissions,
} from "@safedeploy/schema";
import type { ConsumerDeclaration, ServiceUser } from "@safedeploy/schema";
import { runCli } from "@safedeploy/cli";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { incidentIdFor, incidentService } from "@safedeploy/service-incident";
import { policyService } from "@safedeploy/service-policy";
import { proposalIdFor, proposalService } from "@safedeploy/service-proposal";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { releaseTrainService } from "@safedeploy/service-release-train";
import { budgetEvaluationEvent, createTestEnvRepo, startNatsServer } from "@safedeploy/testing";
import type { PrivateNatsServer } from "@safedeploy/testing";

/*
 * DESIGN.md invariant 3 against a real nats-server running deploy/nats/permissions.conf as
 * generated for the default namespace (the server is private, so `sd` clashes with nothing).
 *
 * The provisioner creates the topology (as `safedeploy provision` does); each service user then
 * does, through @safedeploy/jetstream, what its service does at start and at work: bind to its
 * durables (it may create none), open its buckets, serve its commands, pull and settle (dead-
 * lettering what it cannot parse), publish its events, send its commands, and is refused
 * everything else. Then the real incident, policy and proposal services run as their users
 * (credentials in NATS_URL) and do their job with no permissions violation.
 */

const ns = DEFAULT_NAMESPACE;
const PROVISIONER = "provisioner";
type NatsUser = ServiceUser | typeof PROVISIONER;
const NATS_USERS = servicePermissions(ns).map((p) => p.user) as NatsUser[];
const passwords = Object.fromEntries(
  // nats-server parses a variable's value as a config value: a password starting with a digit
  // would be read as a number and refused, so each starts with a letter.
  NATS_USERS.map((user) => [user, `p${randomBytes(12).toString("hex")}`]),
) as Record<NatsUser, string>;
const workDir = mkdtempSync(join(tmpdir(), "sd-nats-permissions-"));
let server: PrivateNatsServer;
const buses: Bus[] = [];
const subscriptions: Subscription[] = [];
const servers: CommandServer[] = [];

const serverLog = (): string =>
  readFileSync(join(dirname(server.storeDir), "nats-server.log"), "utf8");
const violations = (): string[] =>
  serverLog()
    .split("\n")
    .filter((line) => /Violation/i.test(line));

async function busAs(user: NatsUser): Promise<Bus> {
  const bus = await connectBus({
    servers: [server.url],
    name: `test-as-${user}`,
    ns,
    user,
    pass: passwords[user],
  });
  buses.push(bus);
  return bus;
}

async function eventually<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function qualifiedStream(consumer: ConsumerDeclaration): string {
  return consumer.stream; // the default namespace has no prefix
}

function consumerOf(durable: string): ConsumerDeclaration {
  const found = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === durable);
  if (found === undefined) throw new Error(`no consumer ${durable}`);
  return found;
}

/** A subject a durable delivers, and a user allowed to publish there. */
function probeFor(
  consumer: ConsumerDeclaration,
  tag: string,
): { subject: string; by: ServiceUser } {
  const matches = (type: string) =>
    consumer.filter === ">"
      ? type.startsWith(`${consumer.stream.toLowerCase()}.`)
      : type === consumer.filter;
  for (const user of SERVICE_USERS) {
    const type = SERVICE_ACCESS[user].publishes.find(matches);
    if (type !== undefined) return { subject: `${ns.root}.${type}.${tag}`, by: user };
  }
  if (consumer.stream === "DEADLETTER")
    return { subject: `${ns.root}.dlq.probe.${tag}`, by: "audit" };
  throw new Error(`nobody publishes what ${consumer.durable} reads`);
}

const permissionError = /permission/i;

/** One pull request on a durable, as a consumer loop sends it. */
function pullOnce(bus: Bus, stream: string, durable: string): Promise<unknown> {
  return bus.connection.request(
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    JSON.stringify({ batch: 1, expires: 1_000_000_000 }),
    { timeout: 2_000 },
  );
}

beforeAll(async () => {
  const configFile = join(workDir, "nats.conf");
  writeFileSync(configFile, natsPermissionsConfig(ns));
  for (const user of NATS_USERS) process.env[passwordVariable(user)] = passwords[user];
  server = await startNatsServer({ configFile });
});

afterAll(async () => {
  for (const subscription of subscriptions) await subscription.stop();
  for (const commandServer of servers) await commandServer.stop();
  for (const bus of buses) await bus.close();
  await server.dispose();
  for (const user of NATS_USERS) Reflect.deleteProperty(process.env, passwordVariable(user));
  rmSync(workDir, { recursive: true, force: true });
});

describe("NATS users and permissions (deploy/nats)", () => {
  it("refuses a connection without a user or with a wrong password", async () => {
    await expect(connectBus({ servers: [server.url], name: "anonymous" })).rejects.toThrow(
      /authorization/i,
    );
    await expect(
      connectBus({ servers: [server.url], name: "wrong", user: "audit", pass: "wrong" }),
    ).rejects.toThrow(/authorization/i);
  });

  it("lets the provisioner create the whole topology, and a second run changes nothing", async () => {
    const provisioner = await busAs(PROVISIONER);
    const first = await provision(provisioner);
    expect(first.created).toHaveLength(
      SAFEDEPLOY_TOPOLOGY.streams.length +
        SAFEDEPLOY_TOPOLOGY.consumers.length +
        SAFEDEPLOY_TOPOLOGY.buckets.length,
    );
    const again = await provision(provisioner);
    expect({ created: again.created, updated: again.updated }).toEqual({
      created: [],
      updated: [],
    });
  });

  it("runs `safedeploy provision` as the provisioner (exit 0, nothing left to create); as a service user it exits 1", async () => {
    const run = async (env: Record<string, string>) => {
      let stdout = "";
      let stderr = "";
      const code = await runCli({
        argv: ["provision", "--json"],
        env: { NATS_URL: server.url, ...env },
        stdout: (text) => (stdout += text),
        stderr: (text) => (stderr += text),
      });
      return { code, stdout, stderr };
    };
    const asProvisioner = await run({
      [passwordVariable(PROVISIONER)]: passwords[PROVISIONER],
    });
    expect(asProvisioner.code, asProvisioner.stderr).toBe(0);
    expect(JSON.parse(asProvisioner.stdout)).toMatchObject({ created: [], updated: [] });
    const asService = await run({
      NATS_URL: server.url.replace("nats://", `nats://budget:${passwords.budget}@`),
    });
    expect(asService.code).toBe(1);
    expect(asService.stderr).toMatch(permissionError);
  });

  it("refuses the provisioner any event, pull, KV key, purge or delete", async () => {
    const provisioner = await busAs(PROVISIONER);
    await expect(
      provisioner.js.publish(`${ns.root}.governance.verdict.checkout`, "{}"),
    ).rejects.toThrow(permissionError);
    await expect(pullOnce(provisioner, "GOVERNANCE", "git-actuator")).rejects.toThrow(
      permissionError,
    );
    await expect(provisioner.jsm.streams.purge("GOVERNANCE")).rejects.toThrow(permissionError);
    await expect(provisioner.jsm.streams.delete("GOVERNANCE")).rejects.toThrow(permissionError);
    const sub = provisioner.connection.subscribe(`${ns.root}.>`);
    expect(String(await sub.closed)).toMatch(permissionError);
    // The server logs the refusal a moment later: let it, so later tests count only their own.
    await eventually("the provisioner's refusal in the server log", () =>
      violations().some((l) => l.includes('"provisioner"') && l.includes("Subscription"))
        ? true
        : undefined,
    );
  });

  it("lets every service user bind to, pull from and ack its own durables, open its buckets and serve its commands", async () => {
    const before = violations().length;
    const settled: (Settled & { durable: string })[] = [];
    const users = new Map<ServiceUser, Bus>();
    for (const user of SERVICE_USERS) {
      const bus = await busAs(user);
      users.set(user, bus);
      const access = SERVICE_ACCESS[user];
      for (const bucket of access.buckets) {
        const kv = await openKv(bus, bucket, ResourceName);
        const revision = await kv.create(`probe-${user}`, "checkout");
        expect(await kv.get(`probe-${user}`)).toEqual({ value: "checkout", revision });
      }
      for (const command of access.serves) {
        servers.push(
          await serveCommand(bus, command, () => Promise.reject(new Error("not in this test"))),
        );
      }
      for (const durable of access.consumers) {
        subscriptions.push(
          consumeEvents(bus, {
            consumer: consumerOf(durable),
            handler: () => Promise.resolve(),
            onSettled: (s) => settled.push({ ...s, durable }),
          }),
        );
      }
    }
    // Each durable gets one unparseable message: its owner pulls it and dead-letters it.
    for (const consumer of SAFEDEPLOY_TOPOLOGY.consumers) {
      const probe = probeFor(consumer, `probe-${consumer.durable}`);
      await users.get(probe.by)!.js.publish(probe.subject, "not json");
    }
    for (const consumer of SAFEDEPLOY_TOPOLOGY.consumers) {
      const tag = `probe-${consumer.durable}`;
      const seen = await eventually(`${consumer.durable} to settle its probe`, () =>
        settled.find((s) => s.durable === consumer.durable && s.subject.endsWith(`.${tag}`)),
      );
      expect(seen.outcome).toBe("dead-lettered");
    }
    // The gateway reaches every command server: an empty request is refused as invalid, or (where
    // it is valid, as for train.list) reaches the stand-in handler, which fails it.
    const gateway = users.get("gateway")!;
    for (const command of SERVICE_ACCESS.gateway.requests) {
      const reply = await requestCommand(gateway, command, {} as never);
      expect(reply.ok, command).toBe(false);
      const code = reply.ok ? "ok" : reply.error.code;
      expect(["invalid_request", "internal"], `${command} answered ${code}`).toContain(code);
    }
    expect(violations().slice(before)).toEqual([]);
  });

  it.each([...SERVICE_USERS])(
    "%s may not provision, create or update any durable (another's or its own), nor create or list streams",
    async (user) => {
      const bus = await busAs(user);
      await expect(provision(bus)).rejects.toThrow(permissionError);
      const own = SERVICE_ACCESS[user].consumers.map(consumerOf);
      const another = SAFEDEPLOY_TOPOLOGY.consumers.find(
        (c) => !SERVICE_ACCESS[user].consumers.includes(c.durable),
      )!;
      // Re-creating another's durable with a looser max_ack_pending, or one's own: both refused.
      for (const target of [another, ...own]) {
        await expect(
          bus.jsm.consumers.add(qualifiedStream(target), {
            ...consumerConfig(ns, target),
            max_ack_pending: 1,
          }),
          target.durable,
        ).rejects.toThrow(permissionError);
      }
      await expect(
        bus.jsm.consumers.update(qualifiedStream(another), another.durable, { max_ack_pending: 1 }),
      ).rejects.toThrow(permissionError);
      await expect(pullOnce(bus, another.stream, another.durable)).rejects.toThrow(permissionError);
      await expect(
        bus.jsm.streams.add({ name: `ROGUE_${user.replace(/-/g, "_")}`, subjects: ["rogue.>"] }),
      ).rejects.toThrow(permissionError);
      await expect(bus.jsm.streams.list().next()).rejects.toThrow(permissionError);
      await expect(bus.jsm.consumers.list("GOVERNANCE").next()).rejects.toThrow(permissionError);
    },
  );

  it.each([...SERVICE_USERS])("%s may not publish another domain's events", async (user) => {
    const bus = await busAs(user);
    const mine = new Set<string>(SERVICE_ACCESS[user].publishes);
    const foreign = [
      ...new Set(
        SERVICE_USERS.flatMap((other) => SERVICE_ACCESS[other].publishes).filter(
          (type) => !mine.has(type),
        ),
      ),
    ];
    expect(foreign.length).toBeGreaterThan(0);
    for (const type of foreign) {
      await expect(
        bus.js.publish(`${ns.root}.${type}.checkout`, "{}"),
        `${user} publishing ${type}`,
      ).rejects.toThrow(permissionError);
    }
  });

  it("lets the git actuator read proposals, never write them; the gateway read audit anchors only", async () => {
    const proposal = await busAs("proposal");
    const writable = await openKv(proposal, "proposals", ResourceName);
    await writable.create("PRP-probe", "checkout");
    const actuator = await busAs("git-actuator");
    const proposals = await openKv(actuator, "proposals", ResourceName);
    expect((await proposals.get("PRP-probe"))?.value).toBe("checkout");
    await expect(proposals.create("PRP-forged", "checkout")).rejects.toThrow(permissionError);
    await expect(
      openKv(actuator, "freezes", ResourceName).then((kv) => kv.get("checkout")),
    ).rejects.toThrow(permissionError);
    const gateway = await busAs("gateway");
    const anchors = await openKv(gateway, "audit-anchors", ResourceName);
    expect(await anchors.get("GOVERNANCE")).toBeNull();
    await expect(anchors.create("GOVERNANCE", "forged")).rejects.toThrow(permissionError);
  });

  const others = SERVICE_USERS.filter((user) => user !== "git-actuator");

  it.each(others)(
    "%s can neither subscribe to approved actions nor pull from the git-actuator durable",
    async (user) => {
      const bus = await busAs(user);
      const sub = bus.connection.subscribe(`${ns.root}.governance.action-requested.>`);
      expect(String(await sub.closed)).toMatch(permissionError);
      await expect(pullOnce(bus, "GOVERNANCE", "git-actuator")).rejects.toThrow(permissionError);
    },
  );

  it("keeps each user's replies to itself: its own inbox prefix, nobody else's, not _INBOX.>", async () => {
    const gateway = await busAs("gateway");
    const policy = await busAs("policy");
    // The gateway's requests (a command, a JetStream API call) are answered on its own inboxes.
    const reply = await requestCommand(gateway, "gate.query", {} as never);
    expect(reply.ok).toBe(false);
    // (the one JetStream lookup it makes: an audit durable's ack floor, for /v1/audit/verify)
    expect((await gateway.jsm.consumers.info("GOVERNANCE", "audit-governance")).name).toBe(
      "audit-governance",
    );
    // Another user can listen neither there nor on the shared prefix.
    for (const subject of ["_INBOX_gateway.>", "_INBOX.>"]) {
      const sub = policy.connection.subscribe(subject);
      expect(String(await sub.closed), subject).toMatch(permissionError);
    }
  });

  it("refuses the collector user a governance publish", async () => {
    const collector = await busAs("collector");
    await expect(
      collector.js.publish(`${ns.root}.governance.verdict.checkout`, "{}"),
    ).rejects.toThrow(permissionError);
  });

  it.each([...SERVICE_USERS])(
    "%s can neither delete, purge nor shorten a stream, nor delete a message",
    async (user) => {
      const bus = await busAs(user);
      await expect(bus.jsm.streams.delete("GOVERNANCE")).rejects.toThrow(permissionError);
      await expect(bus.jsm.streams.purge("INCIDENTS")).rejects.toThrow(permissionError);
      await expect(bus.jsm.streams.deleteMessage("INCIDENTS", 1)).rejects.toThrow(permissionError);
      await expect(bus.jsm.streams.update("INCIDENTS", { max_age: 1_000_000_000 })).rejects.toThrow(
        permissionError,
      );
      await expect(bus.jsm.consumers.delete("GOVERNANCE", "git-actuator")).rejects.toThrow(
        permissionError,
      );
    },
  );

  it("logs each refusal on the server, naming the user", () => {
    const logged = violations();
    expect(logged.some((l) => l.includes("action-requested") && l.includes('"proposal"'))).toBe(
      true,
    );
    expect(logged.some((l) => l.includes("STREAM.DELETE") && l.includes('"git-actuator"'))).toBe(
      true,
    );
  });

  it("runs the real incident, policy, proposal, release-train and git-actuator services as their users: a forged action for the pending rollback is refused, the approved one is pushed, without a violation", async () => {
    // The stand-ins of the first test must not answer in the real services' place.
    for (const subscription of subscriptions.splice(0)) await subscription.stop();
    for (const commandServer of servers.splice(0)) await commandServer.stop();
    const before = violations().length;
    const urlAs = (user: ServiceUser) =>
      server.url.replace("nats://", `nats://${user}:${passwords[user]}@`);
    const repo = await createTestEnvRepo("nats-permissions");
    await repo.commit("checkout v1", { "envs/prod/checkout/rollout.yaml": "image: checkout:v1\n" });
    await repo.commit("checkout v2", { "envs/prod/checkout/rollout.yaml": "image: checkout:v2\n" });
    const env = (user: ServiceUser) => ({
      NATS_URL: urlAs(user),
      SAFEDEPLOY_CATALOG: new URL("../fixtures/catalog/governance", import.meta.url).pathname,
      SAFEDEPLOY_HOME: join(workDir, "home"),
      LOG_LEVEL: "silent",
    });
    const actuatorEnv = {
      ...env("git-actuator"),
      SAFEDEPLOY_ENV_REPO: repo.remote,
      SAFEDEPLOY_FORGE: "git",
    };
    const running: ServiceHandle[] = [
      await startService(incidentService, { env: env("incident") }),
      await startService(policyService, { env: env("policy") }),
      await startService(proposalService, { env: env("proposal") }),
      await startService(releaseTrainService, { env: env("release-train") }),
      await startService(createGitActuatorService({ env: actuatorEnv }), { env: actuatorEnv }),
    ];
    try {
      const budget = await busAs("budget");
      const burn = budgetEvaluationEvent("checkout", new Date().toISOString(), "fast-burn", {
        burn1h: 20,
      });
      await publishEvent(budget, burn);
      const proposalId = proposalIdFor(`${incidentIdFor(burn.id)}:rollback-rollout`);
      // A forged approved action for the still pending rollback, sent by a user that may publish
      // approved actions (release-train): the actuator checks the proposal itself and refuses.
      const records = await openKv(await busAs("git-actuator"), "proposals", ProposalRecord);
      let pending: ProposalRecord | undefined;
      for (let i = 0; i < 200 && pending === undefined; i++) {
        pending = (await records.get(proposalId))?.value;
        if (pending === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(pending?.state).toBe("pending");
      const forgedAt = new Date().toISOString();
      await publishEvent(
        await busAs("release-train"),
        createEnvelope(
          {
            type: "governance.action-requested",
            id: "forged-from-a-preview",
            service: "checkout",
            data: {
              proposalId,
              kind: "rollback-rollout",
              incidentId: pending?.incidentId ?? null,
              requestedAt: forgedAt,
              plan: pending?.plan ?? { action: "git-revert", path: "envs/prod/checkout" },
            },
          },
          { source: "release-train", time: forgedAt },
        ),
      );
      const actuator = running[4]!;
      const refusedNotApproved = async () =>
        (
          await actuator.registry.getSingleMetric("safedeploy_actuator_refused_total")?.get()
        )?.values.find((v) => v.labels.reason === "not-approved")?.value ?? 0;
      for (let i = 0; i < 200 && (await refusedNotApproved()) === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await refusedNotApproved()).toBe(1);
      expect(Object.keys(await repo.branches())).not.toContain(`safedeploy/${proposalId}`);
      // The proposal service answers the gateway's approve with the rollback it made for the
      // incident the incident service opened: the whole chain ran under the users' permissions.
      const gateway = await busAs("gateway");
      let approved: Awaited<ReturnType<typeof requestCommand<"proposal.approve">>> | undefined;
      for (let i = 0; i < 200 && approved?.ok !== true; i++) {
        approved = await requestCommand(gateway, "proposal.approve", {
          proposalId,
          by: "ana",
          reason: "permissions test",
        });
        if (approved.ok) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(approved).toMatchObject({ ok: true, result: { state: "approved" } });
      const gate = await requestCommand(gateway, "gate.query", { service: "checkout" });
      expect(gate).toMatchObject({ ok: true, result: { allowed: false } });
      // The actuator, bound to its durable and reading the proposal's record (KV, read-only),
      // pushes the rollback branch.
      let branches: Record<string, string> = {};
      for (let i = 0; i < 200 && branches[`safedeploy/${proposalId}`] === undefined; i++) {
        branches = await repo.branches();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(Object.keys(branches)).toContain(`safedeploy/${proposalId}`);
      expect(violations().slice(before)).toEqual([]);
    } finally {
      for (const service of running) await service.shutdown("test");
      await repo.dispose();
    }
  });
});
