import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthCheck } from "@safedeploy/schema";
import { MAX_BODY_BYTES, probeHealth } from "@safedeploy/release";
import { closeServers, listenLocal } from "@safedeploy/testing";

/* Two real local servers, two origins: `main` answers by path, `other` records who reached it. */
let main: Server;
let other: Server;
let base: string;
let otherBase: string;
const reachedOther: IncomingHttpHeaders[] = [];

const listen = listenLocal;

beforeAll(async () => {
  other = createServer((request, response) => {
    reachedOther.push(request.headers);
    response.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
  });
  otherBase = await listen(other);
  main = createServer((request, response) => {
    switch (request.url) {
      case "/healthz":
        response.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
        return;
      case "/huge": {
        // Streamed past the cap, in chunks, without a content-length.
        response.writeHead(200, { "content-type": "text/plain" });
        const chunk = "x".repeat(64 * 1024);
        for (let i = 0; i < 20; i += 1) response.write(chunk);
        response.end();
        return;
      }
      case "/exactly-the-cap":
        response.writeHead(200).end("y".repeat(MAX_BODY_BYTES));
        return;
      case "/moved":
        response.writeHead(302, { location: "/healthz" }).end();
        return;
      case "/elsewhere":
        response.writeHead(302, { location: `${otherBase}/healthz` }).end();
        return;
      case "/loop":
        response.writeHead(307, { location: "/loop" }).end();
        return;
      case "/slow":
        setTimeout(() => response.writeHead(200).end('{"status":"ok"}'), 1_000);
        return;
      default:
        response.writeHead(404).end();
    }
  });
  base = await listen(main);
});

afterAll(() => closeServers([main, other]));

const check = (path: string) =>
  HealthCheck.parse({ http: `${base}${path}`, expect: { json: { "$.status": "ok" } } });

describe("probeHealth bounds its outbound calls", () => {
  it("fails a body larger than 1 MiB, naming the cap, and reads one of exactly 1 MiB", async () => {
    expect(await probeHealth(check("/huge"), { fetch })).toMatchObject({
      error: `response body exceeds ${MAX_BODY_BYTES} bytes; not read further`,
    });
    const atCap = await probeHealth(check("/exactly-the-cap"), { fetch });
    expect(atCap).toMatchObject({ status: 200 });
    if (!("body" in atCap)) throw new Error("expected an answer");
    expect(atCap.body).toHaveLength(MAX_BODY_BYTES);
  });

  it("does not follow a redirect to another origin: its target is never reached", async () => {
    const observation = await probeHealth(check("/elsewhere"), { fetch });
    expect(observation).toMatchObject({
      error: `redirect (302) to another origin, ${otherBase}, not followed`,
    });
    expect(reachedOther).toEqual([]);
  });

  it("follows a redirect within the same origin", async () => {
    expect(await probeHealth(check("/moved"), { fetch })).toMatchObject({
      status: 200,
      body: '{"status":"ok"}',
    });
  });

  it("gives up on a redirect loop", async () => {
    expect(await probeHealth(check("/loop"), { fetch })).toMatchObject({
      error: "more than 5 redirects; not followed further",
    });
  });

  it("keeps its timeout: a slow server is timed out", async () => {
    expect(await probeHealth(check("/slow"), { fetch, timeoutMs: 200 })).toMatchObject({
      error: "timed out",
    });
  });
});
