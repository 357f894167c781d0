import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callHttpHook } from "../src/hooks.js";
import type { HookRequest } from "../src/hooks.js";
import { closeServers, listenLocal } from "@safedeploy/testing";

/* A hook receiver and, on another origin, a server that records whoever reaches it. */
let hooks: Server;
let other: Server;
let base: string;
let otherBase: string;
const reachedOther: IncomingHttpHeaders[] = [];
const received: { url: string; method: string; headers: IncomingHttpHeaders; body: string }[] = [];

const listen = listenLocal;

beforeAll(async () => {
  other = createServer((request, response) => {
    reachedOther.push(request.headers);
    response.writeHead(200).end("ok");
  });
  otherBase = await listen(other);
  hooks = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      const url = request.url ?? "";
      received.push({ url, method: request.method ?? "", headers: request.headers, body });
      switch (url) {
        case "/promote":
          response.writeHead(200).end("promoted");
          return;
        case "/huge":
          response.writeHead(200).end("z".repeat(2 * 1024 * 1024));
          return;
        case "/moved":
          response.writeHead(307, { location: "/promote" }).end();
          return;
        case "/elsewhere":
          response.writeHead(307, { location: `${otherBase}/steal` }).end();
          return;
        case "/slow":
          setTimeout(() => response.writeHead(200).end("late"), 1_000);
          return;
        default:
          response.writeHead(404).end();
      }
    });
  });
  base = await listen(hooks);
});

afterAll(() => closeServers([hooks, other]));

const hook = (path: string): HookRequest => ({
  url: `${base}${path}`,
  method: "POST",
  headers: { authorization: "Bearer hook-secret" },
  idempotencyKey: "TRN-1-s1-promote",
  body: {
    train: "t",
    trainId: "TRN-1",
    step: 0,
    service: "checkout",
    change: { kind: "image", image: "registry.example.com/checkout:v2", path: "envs/checkout" },
    commit: null,
    phase: "promote",
  },
});

describe("strategy hook calls are bounded", () => {
  it("fails a hook whose answer is larger than 1 MiB, with the reason", async () => {
    expect(await callHttpHook(hook("/huge"), { fetch, timeoutMs: 5_000 })).toEqual({
      ok: false,
      status: null,
      detail: "response body exceeds 1048576 bytes; not read further",
    });
  });

  it("never follows a redirect to another origin: the secret headers never reach it", async () => {
    const response = await callHttpHook(hook("/elsewhere"), { fetch, timeoutMs: 5_000 });
    expect(response).toEqual({
      ok: false,
      status: null,
      detail: `redirect (307) to another origin, ${otherBase}, not followed`,
    });
    expect(reachedOther).toEqual([]);
  });

  it("follows a same-origin redirect with its method, body and headers", async () => {
    received.length = 0;
    const response = await callHttpHook(hook("/moved"), { fetch, timeoutMs: 5_000 });
    expect(response).toEqual({ ok: true, status: 200, detail: "HTTP 200: promoted" });
    expect(received.map((r) => [r.url, r.method])).toEqual([
      ["/moved", "POST"],
      ["/promote", "POST"],
    ]);
    expect(received[1]?.headers).toMatchObject({
      authorization: "Bearer hook-secret",
      "idempotency-key": "TRN-1-s1-promote",
    });
    expect(JSON.parse(received[1]?.body ?? "null")).toMatchObject({ trainId: "TRN-1" });
  });

  it("keeps its timeout: a slow hook fails as unanswered", async () => {
    expect(await callHttpHook(hook("/slow"), { fetch, timeoutMs: 200 })).toEqual({
      ok: false,
      status: null,
      detail: "no answer within 200 ms",
    });
  });
});
