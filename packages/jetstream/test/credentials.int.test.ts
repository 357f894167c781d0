import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, serverCredentials } from "@safedeploy/jetstream";
import { startNatsServer } from "@safedeploy/testing";
import type { PrivateNatsServer } from "@safedeploy/testing";

describe("serverCredentials", () => {
  it("moves user and password out of the URLs, keeping the servers", () => {
    expect(
      serverCredentials(["nats://policy:s3cret%40x@n1:4222", "nats://n2:4222", "n3:4222"]),
    ).toEqual({
      servers: ["nats://n1:4222", "nats://n2:4222", "n3:4222"],
      user: "policy",
      pass: "s3cret@x",
    });
    expect(serverCredentials(["nats://tok3n@n1:4222"])).toEqual({
      servers: ["nats://n1:4222"],
      token: "tok3n",
    });
    expect(serverCredentials(["nats://n1:4222"])).toEqual({ servers: ["nats://n1:4222"] });
  });
});

describe("connecting with credentials in NATS_URL", () => {
  let server: PrivateNatsServer;

  beforeAll(async () => {
    const config = join(mkdtempSync(join(tmpdir(), "sd-auth-")), "auth.conf");
    writeFileSync(
      config,
      'authorization { users = [ { user: "policy", password: "9digit-first" } ] }\n',
    );
    server = await startNatsServer({ configFile: config });
  });

  afterAll(async () => {
    await server.dispose();
  });

  it("authenticates with the URL's user and password (a digit-first password too)", async () => {
    const url = server.url.replace("nats://", "nats://policy:9digit-first@");
    const bus = await connectBus({ servers: [url], name: "credentials-test" });
    expect(bus.isConnected()).toBe(true);
    await bus.close();
  });

  it("is refused with a wrong password", async () => {
    const url = server.url.replace("nats://", "nats://policy:wrong@");
    await expect(
      connectBus({ servers: [url], name: "credentials-test", timeoutMs: 2_000 }),
    ).rejects.toThrow();
  });
});
