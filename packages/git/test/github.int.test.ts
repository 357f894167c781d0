/**
 * The GitHub forge against a LOCAL STAND-IN for GitHub's REST API (a real GitHub cannot be reached
 * from here). The `node:http` server below follows GitHub's documented shapes for the few calls the
 * forge makes: list and create pull requests, add labels, and mint a GitHub App installation token
 * (verifying the App's RS256 JWT with the public half of a key pair generated here).
 */
import { createVerify, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ForgeError, githubForge, reviewFor } from "../src/index.js";
import type { ChangeCommitted, Forge } from "../src/index.js";

interface Pull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  labels: string[];
  state: "open" | "closed";
}
interface Fault {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

const { publicKey, privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
});

const TOKEN = "ghp_testtokenABCDEFGHIJ1234";
const APP_ID = "4242";
const INSTALLATION = "77";
let server: Server;
let apiUrl: string;
let pulls: Pull[];
let faults: Fault[];
let installationTokens: string[];
let seenAuth: string[];
let jwtIssuers: string[];

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

function verifyJwt(jwt: string): { iss: string } | undefined {
  const [header, payload, signature] = jwt.split(".");
  if (header === undefined || payload === undefined || signature === undefined) return undefined;
  const alg = (JSON.parse(Buffer.from(header, "base64url").toString()) as { alg: string }).alg;
  const ok = createVerify("RSA-SHA256")
    .update(`${header}.${payload}`)
    .verify(publicKey, Buffer.from(signature, "base64url"));
  if (alg !== "RS256" || !ok) return undefined;
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as {
    iss: string | number;
    exp: number;
    iat: number;
  };
  const now = Date.now() / 1_000;
  if (claims.exp < now || claims.exp - claims.iat > 600 + 60) return undefined;
  return { iss: String(claims.iss) };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
}

const pullJson = (p: Pull) => ({
  number: p.number,
  state: p.state,
  title: p.title,
  body: p.body,
  html_url: `https://github.example/acme/env/pull/${p.number}`,
  head: { ref: p.head, label: `acme:${p.head}` },
  base: { ref: p.base },
  labels: p.labels.map((name) => ({ name })),
});

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const auth = req.headers.authorization ?? "";
  const body = await readJson(req);
  const tokenRoute = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(url.pathname);
  if (req.method === "POST" && tokenRoute !== null) {
    const claims = auth.startsWith("bearer ") ? verifyJwt(auth.slice(7)) : undefined;
    if (claims?.iss !== APP_ID || tokenRoute[1] !== INSTALLATION) {
      send(res, 401, { message: "A JSON web token could not be decoded" });
      return;
    }
    jwtIssuers.push(claims.iss);
    const token = `ghs_installation${installationTokens.length}`;
    installationTokens.push(token);
    send(res, 201, {
      token,
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      permissions: { contents: "write", pull_requests: "write", metadata: "read" },
      repository_selection: "selected",
    });
    return;
  }
  seenAuth.push(auth);
  const allowed = [`token ${TOKEN}`, ...installationTokens.map((t) => `token ${t}`)];
  if (!allowed.includes(auth)) {
    send(res, 401, {
      message: "Bad credentials",
      documentation_url: "https://docs.github.com/rest",
    });
    return;
  }
  const fault = faults.shift();
  if (fault !== undefined) {
    send(res, fault.status, fault.body, fault.headers);
    return;
  }
  if (url.pathname === "/repos/acme/env/pulls" && req.method === "GET") {
    const head = url.searchParams.get("head");
    const state = url.searchParams.get("state") ?? "open";
    send(
      res,
      200,
      pulls.filter((p) => `acme:${p.head}` === head && p.state === state).map(pullJson),
    );
    return;
  }
  if (url.pathname === "/repos/acme/env/pulls" && req.method === "POST") {
    const head = String(body.head);
    if (pulls.some((p) => p.head === head && p.state === "open")) {
      send(res, 422, {
        message: "Validation Failed",
        errors: [
          {
            resource: "PullRequest",
            code: "custom",
            message: `A pull request already exists for acme:${head}.`,
          },
        ],
        documentation_url: "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
      });
      return;
    }
    const pull: Pull = {
      number: pulls.length + 1,
      head,
      base: String(body.base),
      title: String(body.title),
      body: String(body.body),
      labels: [],
      state: "open",
    };
    pulls.push(pull);
    send(res, 201, pullJson(pull));
    return;
  }
  const labels = /^\/repos\/acme\/env\/issues\/(\d+)\/labels$/.exec(url.pathname);
  if (labels !== null && req.method === "POST") {
    const pull = pulls.find((p) => p.number === Number(labels[1]));
    if (pull === undefined) {
      send(res, 404, { message: "Not Found" });
      return;
    }
    for (const name of body.labels as string[])
      if (!pull.labels.includes(name)) pull.labels.push(name);
    send(
      res,
      200,
      pull.labels.map((name, i) => ({ id: i + 1, name, color: "ededed", default: false })),
    );
    return;
  }
  send(res, 404, { message: "Not Found" });
}

const committed: ChangeCommitted = {
  status: "pushed",
  branch: "safedeploy/PRP-1",
  commit: "a".repeat(40),
  baseCommit: "b".repeat(40),
  diff: "diff --git a/x b/x\n",
  diffStat:
    " envs/prod/checkout/rollout.yaml | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)",
  subject: "Revert envs/prod/checkout to before cccccccccccc",
  body: "Reverts the part of cccc under envs/prod/checkout.",
};
const change = reviewFor(
  { proposalId: "PRP-1", incidentId: "INC-3", kind: "rollback-rollout" },
  committed,
  "main",
);
const tokenForge = (): Forge =>
  githubForge({ apiUrl, repository: "acme/env", auth: { kind: "token", token: TOKEN } });

async function forgeError(run: () => Promise<unknown>): Promise<ForgeError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof ForgeError) return error;
    throw error;
  }
  throw new Error("expected a ForgeError");
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      send(res, 500, { message: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  pulls = [];
  faults = [];
  installationTokens = [];
  seenAuth = [];
  jwtIssuers = [];
});

describe("GitHub forge (local stand-in for the GitHub REST API)", () => {
  it("opens one labelled pull request however often the action runs, replicas racing included", async () => {
    const first = await tokenForge().openChange(change);
    expect(first).toEqual({
      prUrl: "https://github.example/acme/env/pull/1",
      number: 1,
      reused: false,
    });
    const again = await Promise.all([
      tokenForge().openChange(change),
      tokenForge().openChange(change),
    ]);
    expect(again).toEqual([
      { prUrl: first.prUrl, number: 1, reused: true },
      { prUrl: first.prUrl, number: 1, reused: true },
    ]);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({
      head: "safedeploy/PRP-1",
      base: "main",
      labels: ["safedeploy", "rollback-rollout"],
    });
    expect(pulls[0]?.title).toBe("Revert envs/prod/checkout to before cccccccccccc (PRP-1)");
    expect(pulls[0]?.body).toContain("**PRP-1** (rollback-rollout) for incident **INC-3**");
    expect(pulls[0]?.body).toContain("1 file changed");
    expect(seenAuth.every((a) => a === `token ${TOKEN}`)).toBe(true);
  });

  it("two replicas creating at once: the loser's 422 'already exists' reuses the winner's PR", async () => {
    const results = await Promise.all([1, 2, 3].map(() => tokenForge().openChange(change)));
    expect(pulls).toHaveLength(1);
    expect(results.filter((r) => !r.reused)).toHaveLength(1);
    expect(new Set(results.map((r) => r.prUrl))).toEqual(
      new Set([pulls[0] && pullJson(pulls[0]).html_url]),
    );
  });

  it("authenticates as a GitHub App: a verified RS256 JWT buys an installation token, used for every call", async () => {
    const forge = githubForge({
      apiUrl,
      repository: "acme/env",
      auth: { kind: "app", appId: APP_ID, privateKey, installationId: INSTALLATION },
    });
    const review = await forge.openChange(change);
    expect(review.number).toBe(1);
    expect(jwtIssuers).toEqual([APP_ID]);
    expect(installationTokens).toEqual(["ghs_installation0"]);
    expect(seenAuth.length).toBeGreaterThan(0);
    expect(seenAuth.every((a) => a === "token ghs_installation0")).toBe(true);
    expect(await forge.pushToken()).toBe("ghs_installation0"); // cached until it nears expiry
    expect(installationTokens).toHaveLength(1);
  });

  it("classifies failures: 5xx and rate limits retryable, other 4xx terminal; no secret in messages", async () => {
    faults.push({ status: 502, body: { message: "Server Error" } });
    const bad = await forgeError(() => tokenForge().openChange(change));
    expect(bad).toMatchObject({ status: 502, retryable: true });

    faults.push({
      status: 429,
      headers: { "retry-after": "30" },
      body: { message: "Too many requests" },
    });
    expect(await forgeError(() => tokenForge().openChange(change))).toMatchObject({
      retryable: true,
      retryAfterMs: 30_000,
    });
    faults.push({
      status: 403,
      headers: {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(Math.floor(Date.now() / 1_000) + 60),
      },
      body: { message: "API rate limit exceeded" },
    });
    const limited = await forgeError(() => tokenForge().openChange(change));
    expect(limited.retryable).toBe(true);
    expect(limited.message).toContain("rate limited");

    faults.push({ status: 200, body: [] }); // list: nothing open
    faults.push({
      status: 422,
      body: {
        message: "Validation Failed",
        errors: [{ resource: "PullRequest", field: "base", code: "invalid" }],
      },
    });
    expect(await forgeError(() => tokenForge().openChange(change))).toMatchObject({
      status: 422,
      retryable: false,
    });

    const denied = await forgeError(() =>
      githubForge({
        apiUrl,
        repository: "acme/env",
        auth: { kind: "token", token: "ghp_wrongtokenXYZ123456" },
      }).openChange(change),
    );
    expect(denied).toMatchObject({ status: 401, retryable: false });
    expect(`${denied.message} ${JSON.stringify(denied)}`).not.toContain("ghp_wrongtokenXYZ123456");

    const unreachable = await forgeError(() =>
      githubForge({
        apiUrl: "http://127.0.0.1:1",
        repository: "acme/env",
        auth: { kind: "token", token: TOKEN },
      }).openChange(change),
    );
    expect(unreachable.retryable).toBe(true);
    expect(pulls).toHaveLength(0);
  });
});
