import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connectBus, openKv, provision, publishEvent } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import {
  DEFAULT_NAMESPACE,
  NOTIFIER_CONSUMERS,
  SERVICE_ACCESS,
  natsPermissionsConfig,
  passwordVariable,
  servicePermissions,
} from "@safedeploy/schema";
import { DeliveryRecord } from "@safedeploy/notify";
import { createNotifierService } from "@safedeploy/service-notifier";
import {
  closeServers,
  incidentOpenedEvent,
  listenLocal,
  serviceYaml,
  startNatsServer,
} from "@safedeploy/testing";
import type { PrivateNatsServer } from "@safedeploy/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/*
 * The notifier as its own NATS user, on a private nats-server running the generated permissions:
 * it reads only its own durables (never approved actions), publishes only its outcome events,
 * and does its job without a single permissions violation.
 */
const ns = DEFAULT_NAMESPACE;
const users = servicePermissions(ns).map((p) => p.user);
const passwords = Object.fromEntries(users.map((u) => [u, `p${randomBytes(12).toString("hex")}`]));
const workDir = mkdtempSync(join(tmpdir(), "sd-notify-user-"));
let server: PrivateNatsServer;
const buses: Bus[] = [];
const http: Server[] = [];
let notifier: ServiceHandle | undefined;

const violations = (): string[] =>
  readFileSync(join(dirname(server.storeDir), "nats-server.log"), "utf8")
    .split("\n")
    .filter((line) => /Violation/i.test(line));

async function busAs(user: string): Promise<Bus> {
  const bus = await connectBus({
    servers: [server.url],
    name: `test-as-${user}`,
    ns,
    user,
    pass: passwords[user] ?? "",
  });
  buses.push(bus);
  return bus;
}

beforeAll(async () => {
  const configFile = join(workDir, "nats.conf");
  writeFileSync(configFile, natsPermissionsConfig(ns));
  for (const user of users) process.env[passwordVariable(user)] = passwords[user];
  server = await startNatsServer({ configFile });
  await provision(await busAs("provisioner"));
});

afterAll(async () => {
  await notifier?.shutdown("test");
  await closeServers(http);
  for (const bus of buses) await bus.close();
  await server.dispose();
  for (const user of users) Reflect.deleteProperty(process.env, passwordVariable(user));
  rmSync(workDir, { recursive: true, force: true });
});

describe("the notifier's NATS user", () => {
  it("is declared with only its durables, buckets and outcome events", () => {
    const access = SERVICE_ACCESS.notifier;
    expect(access.consumers).toEqual(NOTIFIER_CONSUMERS.map((c) => c.durable));
    expect(access.publishes).toEqual([
      "governance.notification-delivered",
      "governance.notification-failed",
    ]);
    expect(access.buckets).toEqual(["notifications", "notification-context"]);
    expect([...access.serves, ...access.requests, ...access.reads]).toEqual([]);
    const own = servicePermissions(ns).find((p) => p.user === "notifier");
    expect(own?.publish.allow).not.toContain("sd.governance.action-requested.*");
    expect(own?.publish.allow.filter((s) => s.includes("git-actuator"))).toEqual([]);
    expect(own?.publish.deny).toContain("$JS.API.CONSUMER.MSG.NEXT.GOVERNANCE.git-actuator");
    expect(own?.subscribe.deny).toEqual(["sd.governance.action-requested.>"]);
  });

  it("runs the notifier as that user: it delivers and records the outcome, with no violation", async () => {
    const received: string[] = [];
    const receiver = createServer((request, response) => {
      received.push(String(request.headers["webhook-id"]));
      request.resume();
      response.writeHead(200).end();
    });
    http.push(receiver);
    const url = await listenLocal(receiver);
    writeFileSync(join(workDir, "secret"), `whsec_${randomBytes(32).toString("base64")}\n`);
    const catalog = `${serviceYaml("checkout")}\n---\napiVersion: safedeploy.dev/v1
kind: Notifier
metadata: { name: ops }
spec: { type: webhook, url: "${url}/hook", secretFile: ${join(workDir, "secret")} }
`;
    writeFileSync(join(workDir, "catalog.yaml"), catalog);
    const env = {
      NATS_URL: server.url.replace("nats://", `nats://notifier:${passwords.notifier ?? ""}@`),
      SAFEDEPLOY_CATALOG: join(workDir, "catalog.yaml"),
      LOG_LEVEL: "silent",
    };
    notifier = await startService(createNotifierService(), { env });
    const before = violations().length;
    await publishEvent(
      await busAs("incident"),
      incidentOpenedEvent("checkout", "INC-1", new Date().toISOString()),
    );
    // Its own bucket, as its own user: delivered, and the outcome event accepted by JetStream.
    const deliveries = await openKv(await busAs("notifier"), "notifications", DeliveryRecord);
    let delivered = false;
    for (let i = 0; i < 200 && !delivered; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const id = received[0];
      const record = id === undefined ? null : await deliveries.get(id);
      delivered = record?.value.state === "delivered" && record.value.reported;
    }
    expect(received).toHaveLength(1);
    expect(delivered).toBe(true);
    expect(violations().slice(before)).toEqual([]);
  });
});
