import { describe, expect, it } from "vitest";
import {
  DEFAULT_NAMESPACE,
  FORBIDDEN_JS_API,
  SAFEDEPLOY_TOPOLOGY,
  SERVICE_ACCESS,
  SERVICE_USERS,
  natsPermissionsConfig,
  passwordVariable,
  servicePermissions,
} from "@safedeploy/schema";
import type { ServiceUser, UserPermissions } from "@safedeploy/schema";

const ns = DEFAULT_NAMESPACE;
const all = servicePermissions(ns);
type ServicePermissions = UserPermissions & { readonly user: ServiceUser };
const users = all.filter((u): u is ServicePermissions => u.user !== "provisioner");
const provisioner = all.find((u) => u.user === "provisioner")!;
const of = (user: string): UserPermissions => users.find((u) => u.user === user)!;
const pullsFrom = (p: UserPermissions) =>
  p.publish.allow
    .filter((s) => s.startsWith("$JS.API.CONSUMER.MSG.NEXT."))
    .map((s) => s.split(".").slice(-2).join("."));

describe("servicePermissions", () => {
  it("has the provisioner and one user per service, each with its own password variable", () => {
    expect(all.map((u) => u.user)).toEqual(["provisioner", ...SERVICE_USERS]);
    expect(passwordVariable("git-actuator")).toBe("SAFEDEPLOY_NATS_GIT_ACTUATOR_PASSWORD");
    expect(provisioner.passwordVariable).toBe("SAFEDEPLOY_NATS_PROVISIONER_PASSWORD");
    expect(new Set(all.map((u) => u.passwordVariable)).size).toBe(SERVICE_USERS.length + 1);
  });

  it("lets every topology consumer be pulled by exactly one user, its declared owner", () => {
    for (const consumer of SAFEDEPLOY_TOPOLOGY.consumers) {
      const key = `${consumer.stream}.${consumer.durable}`;
      const pullers = users.filter((u) => pullsFrom(u).includes(key)).map((u) => u.user);
      expect(pullers, key).toHaveLength(1);
      expect(SERVICE_ACCESS[pullers[0]!].consumers).toContain(consumer.durable);
    }
  });

  it("gives only the git actuator the action-requested durable and subject", () => {
    expect(pullsFrom(of("git-actuator"))).toEqual([
      "GOVERNANCE.git-actuator",
      "GOVERNANCE.git-actuator-previews",
    ]);
    for (const user of users.filter((u) => u.user !== "git-actuator")) {
      expect(pullsFrom(user)).not.toContain("GOVERNANCE.git-actuator");
      expect(user.publish.deny).toContain("$JS.API.CONSUMER.MSG.NEXT.GOVERNANCE.git-actuator");
      expect(user.publish.deny).toContain("$JS.ACK.GOVERNANCE.git-actuator.>");
      expect(user.subscribe.deny).toEqual(["sd.governance.action-requested.>"]);
      expect(user.subscribe.allow.some((s) => s.startsWith("sd.governance"))).toBe(false);
    }
  });

  it("lets nobody delete or purge a stream, delete a message, update a stream or delete a consumer", () => {
    for (const user of users) {
      expect(user.publish.deny).toEqual(expect.arrayContaining([...FORBIDDEN_JS_API]));
      const forbidden = /^\$JS\.API\.(STREAM\.(DELETE|PURGE|MSG\.DELETE|UPDATE)|CONSUMER\.DELETE)/;
      expect(user.publish.allow.filter((s) => forbidden.test(s))).toEqual([]);
    }
  });

  it("allows each user to publish only its declared event types and dead letters", () => {
    for (const user of users) {
      const events = user.publish.allow.filter(
        (s) => s.startsWith("sd.") && !s.startsWith("sd.cmd."),
      );
      expect(events).toEqual([
        ...SERVICE_ACCESS[user.user].publishes.map((type) => `sd.${type}.*`),
        "sd.dlq.>",
      ]);
    }
    expect(of("collector").publish.allow.some((s) => s.startsWith("sd.governance"))).toBe(false);
  });

  it("lets servers answer commands and requesters send them", () => {
    expect(of("proposal").subscribe.allow).toEqual([
      "_INBOX_proposal.>",
      "sd.cmd.proposal.approve",
      "sd.cmd.proposal.reject",
      "sd.cmd.proposal.revert",
      "sd.cmd.proposal.promotion",
      "sd.cmd.deploy.record",
      "sd.cmd.deploy.list",
    ]);
    expect(of("proposal").allowResponses).toBe(true);
    // A release train asks for reverts; only the proposal service files proposals.
    expect(of("release-train").publish.allow).toContain("sd.cmd.proposal.revert");
    expect(of("release-train").publish.allow).not.toContain("sd.governance.proposal-created.*");
    expect(of("release-train").publish.allow.some((s) => s.startsWith("$KV.proposals"))).toBe(
      false,
    );
    expect(of("gateway").allowResponses).toBe(false);
    expect(of("gateway").publish.allow).toContain("sd.cmd.proposal.approve");
    expect(of("collector").publish.allow.some((s) => s.startsWith("sd.cmd."))).toBe(false);
  });

  it("grants KV subjects only to the buckets' users", () => {
    expect(of("incident").publish.allow).toContain("$KV.incidents-active.>");
    expect(of("proposal").publish.allow.filter((s) => s.startsWith("$KV."))).toEqual([
      "$KV.proposals.>",
      "$KV.deploys.>",
    ]);
    expect(of("gateway").publish.allow.filter((s) => s.startsWith("$KV."))).toEqual([]);
  });

  it("lets no service user create or update a stream or a durable, nor list anything", () => {
    const managing =
      /^\$JS\.API\.(STREAM\.(CREATE|UPDATE|NAMES|LIST)|CONSUMER\.(CREATE|DURABLE|UPDATE|NAMES|LIST))/;
    for (const user of users) {
      expect(
        user.publish.allow.filter((s) => managing.test(s)),
        user.user,
      ).toEqual([]);
      expect(user.publish.deny).toEqual(
        expect.arrayContaining(["$JS.API.CONSUMER.CREATE.>", "$JS.API.STREAM.CREATE.>"]),
      );
      // Looking up: its own durables (to bind), plus what it inspects.
      const infos = user.publish.allow
        .filter((s) => s.startsWith("$JS.API.CONSUMER.INFO."))
        .map((s) => s.split(".").at(-1));
      expect(infos).toEqual([
        ...SERVICE_ACCESS[user.user].consumers,
        ...SERVICE_ACCESS[user.user].inspects,
      ]);
    }
  });

  it("lets the provisioner create the topology, each durable pinned to its filter, and nothing else", () => {
    expect(provisioner.publish.allow).toContain(
      "$JS.API.CONSUMER.CREATE.GOVERNANCE.audit-governance.sd.governance.>",
    );
    expect(provisioner.publish.allow).toContain("$JS.API.STREAM.CREATE.KV_audit-anchors");
    expect(provisioner.publish.allow.some((s) => /^sd\.|^\$KV\.|MSG\.NEXT|\$JS\.ACK/.test(s))).toBe(
      false,
    );
    expect(provisioner.subscribe.allow).toEqual(["_INBOX_provisioner.>"]);
    expect(provisioner.publish.deny).toEqual(expect.arrayContaining([...FORBIDDEN_JS_API]));
  });

  it("lets the git actuator read the proposals bucket, never write it", () => {
    const actuator = of("git-actuator").publish.allow;
    expect(actuator).toContain("$JS.API.DIRECT.GET.KV_proposals.>");
    expect(actuator).toContain("$JS.API.STREAM.INFO.KV_proposals");
    expect(actuator.some((s) => s.startsWith("$KV."))).toBe(false);
  });

  it("names the stream prefix and subject root of the namespace", () => {
    const [policy] = servicePermissions({ root: "t1", prefix: "T1_" }).filter(
      (u) => u.user === "policy",
    );
    expect(policy!.publish.allow).toContain("$JS.API.CONSUMER.MSG.NEXT.T1_BUDGET.T1_policy");
    expect(policy!.publish.allow).toContain("$KV.T1_verdicts.>");
    expect(policy!.subscribe.allow).toContain("t1.cmd.gate.query");
  });

  it("refuses a declaration that leaves a consumer without an owner or gives actions to another", () => {
    const access = { ...SERVICE_ACCESS, budget: { ...SERVICE_ACCESS.budget, consumers: [] } };
    expect(() => servicePermissions(ns, { access })).toThrow(/budget must have exactly one owner/);
    const stolen = {
      ...SERVICE_ACCESS,
      "git-actuator": { ...SERVICE_ACCESS["git-actuator"], consumers: ["git-actuator-previews"] },
      gateway: { ...SERVICE_ACCESS.gateway, consumers: ["git-actuator"] },
    };
    expect(() => servicePermissions(ns, { access: stolen })).toThrow(
      /not an approved-action reader/,
    );
  });
});

describe("natsPermissionsConfig", () => {
  it("references password variables and holds no secret", () => {
    const config = natsPermissionsConfig(ns);
    for (const user of SERVICE_USERS) {
      expect(config).toContain(`password: $${passwordVariable(user)}\n`);
    }
    expect(config.match(/password:/g)).toHaveLength(SERVICE_USERS.length + 1);
    expect(config).toContain("allow_responses: true");
  });
});
