// The CLI commands that talk to the gateway (snapshot, gate, incidents, proposals), run
// in-process against a local node:http server that answers with the shapes of CONTRACT.md
// ("HTTP API" and "Core shapes") and of the audit read model (ServiceState, Snapshot). The real
// gateway (services/gateway) was being written at the same time; its own tests cover the
// server side, and test/e2e/dashboard.e2e.test.ts drives the real one.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";

const TOKEN = "test-approver-token";
const VIEWER = "test-viewer-token";

const checkoutGate = {
  service: "checkout",
  allowed: false,
  reasons: [
    {
      code: "budget-burn",
      message: "fast-burn on availability",
      value: 16.2,
      threshold: 14.4,
    },
    { code: "active-incident", message: "incident INC-1 is open", value: null, threshold: null },
  ],
  evaluatedAt: "2026-11-24T09:05:00.000Z",
};

const incident = {
  id: "INC-1",
  service: "checkout",
  slo: "availability",
  state: "investigating",
  severity: "fast-burn",
  class: "P1",
  openedAt: "2026-11-24T09:00:00.000Z",
  updatedAt: "2026-11-24T09:03:00.000Z",
  reason: "fast-burn: burn 16.2 > 14.4 over 1h and 15.8 > 14.4 over 5m",
  transitions: [
    {
      from: null,
      to: "detected",
      at: "2026-11-24T09:00:00.000Z",
      actor: "system",
      reason: "fast-burn on availability",
    },
    {
      from: "detected",
      to: "investigating",
      at: "2026-11-24T09:03:00.000Z",
      actor: "alice",
      reason: "looking",
      link: "https://chat.example.com/inc-1",
    },
  ],
};

const diff = `diff --git a/envs/prod/checkout/rollout.yaml b/envs/prod/checkout/rollout.yaml
--- a/envs/prod/checkout/rollout.yaml
+++ b/envs/prod/checkout/rollout.yaml
@@ -1 +1 @@
-image: checkout:v1.6.0
+image: checkout:v1.5.2
`;

const pending = {
  id: "PRP-1",
  service: "checkout",
  incidentId: "INC-1",
  kind: "rollback-rollout",
  state: "pending",
  createdAt: "2026-11-24T09:00:05.000Z",
  approvals: [],
  action: null,
  preview: { diff: "-image: checkout:v1.6.0\n+image: checkout:v1.5.2\n", error: null },
  summary: "revert abc123 under envs/prod/checkout",
};

const executed = {
  ...pending,
  id: "PRP-2",
  state: "executed",
  approvals: [{ by: "alice", at: "2026-11-24T09:04:00.000Z", reason: "roll back now" }],
  action: {
    branch: "safedeploy/PRP-2",
    commit: "0123456789abcdef0123456789abcdef01234567",
    prUrl: "https://github.example.com/shop/env/pull/7",
    diff,
  },
};

const snapshot = {
  at: "2026-11-24T09:05:00.000Z",
  services: [
    {
      name: "checkout",
      severity: "fast-burn",
      budgetRemaining: 0.42,
      slos: [
        {
          slo: "availability",
          severity: "fast-burn",
          budgetRemaining: 0.42,
          objective: 99.9,
          explanation: "fast-burn: burn 16.2 > 14.4",
        },
        { slo: "latency", severity: "normal", budgetRemaining: 0.97, objective: 99 },
      ],
      activeIncident: "INC-1",
      gate: {
        allowed: false,
        reasons: checkoutGate.reasons,
        evaluatedAt: checkoutGate.evaluatedAt,
      },
    },
    {
      name: "search",
      severity: null,
      budgetRemaining: null,
      slos: [],
      activeIncident: null,
      gate: null,
    },
  ],
  incidents: [incident],
  proposals: [pending],
  freezes: [
    {
      id: "FRZ-1",
      service: "checkout",
      from: "2026-11-24T09:00:00.000Z",
      until: "2026-11-25T09:00:00.000Z",
      reason: "budget exhausted",
      actor: "system",
      origin: "exhaustion",
      liftedAt: null,
    },
  ],
  blocked: ["checkout"],
};

/** What the fake API was last asked. */
const seen: { method?: string; url?: string; body?: unknown; authorization?: string } = {};

/** Answers `body` as JSON; true, so a route can `return send(...)`. */
function send(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
  return true;
}

const notFound = (res: ServerResponse, what: string) =>
  send(res, 404, { error: "not_found", message: `no ${what}`, details: [] });

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of req) text += String(chunk);
  return text === "" ? undefined : JSON.parse(text);
}

async function answer(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const body = await readBody(req);
  Object.assign(seen, {
    method: req.method,
    url: url.pathname + url.search,
    body,
    authorization: req.headers.authorization,
  });
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
  if (token !== TOKEN && token !== VIEWER) {
    return send(res, 401, { error: "unauthorized", message: "missing or unknown token" });
  }
  const path = url.pathname;
  if (req.method === "POST" && token !== TOKEN) {
    return send(res, 403, { error: "forbidden", message: "role viewer, needs approver" });
  }
  if (req.method === "GET" && path === "/v1/snapshot") return send(res, 200, snapshot);
  if (req.method === "GET" && path === "/v1/services/checkout/gate") {
    return send(res, 200, checkoutGate);
  }
  if (req.method === "GET" && path === "/v1/services/search/gate") {
    return send(res, 200, {
      service: "search",
      allowed: true,
      reasons: [],
      evaluatedAt: "2026-11-24T09:05:00.000Z",
    });
  }
  if (req.method === "GET" && path === "/v1/services/blind/gate") {
    return send(res, 200, {
      service: "blind",
      allowed: false,
      verdict: "unknown",
      reasons: [
        {
          code: "stale-evidence",
          message: "SLO availability: the newest evidence is 120 s old > staleAfter 1m30s",
          value: 120,
          threshold: 90,
        },
      ],
      evaluatedAt: "2026-11-24T09:05:00.000Z",
      evidenceAge: 120,
    });
  }
  if (req.method === "GET" && path === "/v1/services/broken/gate") {
    return send(res, 200, { service: "broken", allowed: "maybe", reasons: [] });
  }
  if (req.method === "GET" && path.endsWith("/gate")) return notFound(res, "such service");
  if (req.method === "GET" && path === "/v1/incidents") {
    const state = url.searchParams.get("state");
    const items = [incident].filter((i) => state === null || i.state === state);
    return send(res, 200, { items, next: null });
  }
  if (req.method === "GET" && path === "/v1/incidents/INC-1") return send(res, 200, incident);
  if (req.method === "GET" && path === "/v1/incidents/INC-2") {
    // Only the moves after the opening, as the read model lists them.
    return send(res, 200, { ...incident, id: "INC-2", transitions: incident.transitions.slice(1) });
  }
  if (req.method === "POST" && path === "/v1/incidents/INC-1/transitions") {
    const { to } = body as { to: string };
    if (to === "detected") {
      return send(res, 409, {
        error: "illegal_transition",
        message: "INC-1 cannot go from investigating to detected",
        details: [{ from: "investigating", to: "detected" }],
      });
    }
    return send(res, 200, { ...incident, state: to });
  }
  if (req.method === "GET" && path === "/v1/proposals") {
    return send(res, 200, { items: [executed, pending], next: null });
  }
  if (req.method === "GET" && path === "/v1/proposals/PRP-2") return send(res, 200, executed);
  if (req.method === "GET" && path === "/v1/proposals/PRP-1") return send(res, 200, pending);
  if (req.method === "POST" && path === "/v1/proposals/PRP-1/approve") {
    const { reason } = body as { reason: string };
    return send(res, 200, {
      ...pending,
      state: "approved",
      approvals: [{ by: "ci", at: "2026-11-24T09:06:00.000Z", reason }],
    });
  }
  if (req.method === "POST" && path === "/v1/proposals/PRP-2/reject") {
    return send(res, 409, {
      error: "illegal_transition",
      message: "PRP-2 is executed: it can no longer be rejected",
      details: [],
    });
  }
  if (req.method === "POST" && path === "/v1/proposals/PRP-1/reject") {
    return send(res, 400, {
      error: "invalid_body",
      message: "invalid request body",
      details: [{ path: ["reason"], message: "too long" }],
    });
  }
  return notFound(res, path);
}

let server: Server;
let api: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    answer(req, res).catch((error: unknown) => {
      send(res, 500, { error: "internal", message: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: { SAFEDEPLOY_API: api, SAFEDEPLOY_TOKEN: TOKEN, ...env },
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("safedeploy snapshot", () => {
  it("prints services with budget bars per SLO, incidents, proposals and freezes", async () => {
    const result = await run(["snapshot"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(seen).toMatchObject({ method: "GET", url: "/v1/snapshot" });
    expect(seen.authorization).toBe(`Bearer ${TOKEN}`);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe(
      "Snapshot at 2026-11-24 09:05:00Z: 2 services, 1 active incidents, 1 open proposals, " +
        "1 freezes; promotion blocked: checkout",
    );
    expect(result.stdout).toContain(
      [
        "Services",
        "SERVICE   SLO           BUDGET LEFT                  SEVERITY   INCIDENT  GATE",
        "checkout  availability  [########------------]  42%  fast-burn  INC-1     blocked (budget-burn, active-incident)",
        "          latency       [###################-]  97%  normal",
        "search    -             [      no data       ]       -          -         -",
      ].join("\n"),
    );
    expect(result.stdout).toContain("INC-1  checkout  investigating  fast-burn  P1");
    expect(result.stdout).toContain("PRP-1  checkout  rollback-rollout  pending  INC-1     0");
    expect(result.stdout).toContain("checkout  exhaustion  2026-11-24 09:00:00Z");
  });

  it("--json prints the API's answer as it came", async () => {
    const result = await run(["snapshot", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(snapshot);
  });
});

describe("safedeploy gate", () => {
  it("exits 3 when blocked, printing each reason as code: message (value vs threshold)", async () => {
    expect(await run(["gate", "checkout"])).toEqual({
      code: 3,
      stdout:
        "checkout: promotion BLOCKED (evaluated 2026-11-24 09:05:00Z)\n" +
        "  budget-burn: fast-burn on availability (16.2 vs 14.4)\n" +
        "  active-incident: incident INC-1 is open\n",
      stderr: "",
    });
  });

  it("exits 0 when allowed, with --json too", async () => {
    expect(await run(["gate", "search"])).toMatchObject({
      code: 0,
      stdout: "search: promotion allowed (evaluated 2026-11-24 09:05:00Z)\n",
    });
    const json = await run(["gate", "search", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ service: "search", allowed: true });
    const blocked = await run(["gate", "checkout", "--json"]);
    expect(blocked.code).toBe(3);
    expect(JSON.parse(blocked.stdout)).toEqual(checkoutGate);
  });

  it("exits 4 when the gate cannot see (stale evidence), never 0", async () => {
    expect(await run(["gate", "blind"])).toEqual({
      code: 4,
      stdout:
        "blind: promotion UNKNOWN (the gate cannot see: no data, stale evidence or failed queries) " +
        "(evaluated 2026-11-24 09:05:00Z, evidence 120 s old)\n" +
        "  stale-evidence: SLO availability: the newest evidence is 120 s old > staleAfter 1m30s (120 vs 90)\n",
      stderr: "",
    });
    expect((await run(["gate", "blind", "--json"])).code).toBe(4);
  });

  it("exits 1 for an unknown service and for an answer that breaks the contract", async () => {
    expect(await run(["gate", "nope"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "safedeploy gate: 404 not_found: no such service\n",
    });
    const broken = await run(["gate", "broken"]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^safedeploy gate: unexpected answer from GET \/v1\/services\/broken\/gate: allowed: /,
    );
  });

  it("exits 2 without a SERVICE or with a bad name", async () => {
    const none = await run(["gate"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("safedeploy gate: gate needs a SERVICE");
    expect(none.stderr).toContain("Usage: safedeploy gate SERVICE [--json]");
    expect((await run(["gate", "Not/A/Service"])).code).toBe(2);
    expect((await run(["gate", "a", "b"])).code).toBe(2);
  });
});

describe("safedeploy incidents", () => {
  it("lists incidents as a table, filters go into the query", async () => {
    const result = await run([
      "incidents",
      "list",
      "--service",
      "checkout",
      "--state",
      "investigating",
    ]);
    expect(seen.url).toBe("/v1/incidents?service=checkout&state=investigating");
    expect(result).toEqual({
      code: 0,
      stdout:
        "ID     SERVICE   STATE          SEVERITY   CLASS  OPENED                UPDATED\n" +
        "INC-1  checkout  investigating  fast-burn  P1     2026-11-24 09:00:00Z  2026-11-24 09:03:00Z\n",
      stderr: "",
    });
    expect((await run(["incidents", "list", "--state", "resolved"])).stdout).toBe("(none)\n");
    const json = await run(["incidents", "list", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({ items: [incident], next: null });
  });

  it("shows an incident with its timeline", async () => {
    const result = await run(["incidents", "show", "INC-1"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "INC-1  checkout  investigating\n" +
        "  severity fast-burn, class P1, SLO availability\n" +
        "  opened 2026-11-24 09:00:00Z, updated 2026-11-24 09:03:00Z\n" +
        "  fast-burn: burn 16.2 > 14.4 over 1h and 15.8 > 14.4 over 5m\n" +
        "\nTimeline\n" +
        "AT                    FROM      TO             BY      REASON                     LINK\n" +
        "2026-11-24 09:00:00Z  -         detected       system  fast-burn on availability  -\n" +
        "2026-11-24 09:03:00Z  detected  investigating  alice   looking                    https://chat.example.com/inc-1\n",
    );
    expect(JSON.parse((await run(["incidents", "show", "INC-1", "--json"])).stdout)).toEqual(
      incident,
    );
    const withoutOpening = await run(["incidents", "show", "INC-2"]);
    expect(withoutOpening.stdout).toContain(
      "2026-11-24 09:00:00Z  -         detected       system  fast-burn: burn 16.2 > 14.4 over 1h and 15.8 > 14.4 over 5m",
    );
    expect(await run(["incidents", "show", "INC-9"])).toMatchObject({
      code: 1,
      stderr: "safedeploy incidents: 404 not_found: no /v1/incidents/INC-9\n",
    });
  });

  it("transitions with a reason and link, and shows a 409 readably (exit 1)", async () => {
    const result = await run([
      "incidents",
      "transition",
      "INC-1",
      "mitigated",
      "--reason",
      "rolled back",
      "--link",
      "https://example.com/pr/7",
    ]);
    expect(result).toEqual({ code: 0, stdout: "INC-1 is now mitigated\n", stderr: "" });
    expect(seen).toMatchObject({
      method: "POST",
      url: "/v1/incidents/INC-1/transitions",
      body: { to: "mitigated", reason: "rolled back", link: "https://example.com/pr/7" },
    });
    expect(
      await run(["incidents", "transition", "INC-1", "detected", "--reason", "again"]),
    ).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "safedeploy incidents: 409 illegal_transition: INC-1 cannot go from investigating to detected\n" +
        '  {"from":"investigating","to":"detected"}\n',
    });
  });

  it("exits 2 for usage errors before asking the API", async () => {
    seen.url = "untouched";
    for (const argv of [
      ["incidents"],
      ["incidents", "frobnicate"],
      ["incidents", "list", "--state", "on-fire"],
      ["incidents", "list", "--bogus"],
      ["incidents", "show"],
      ["incidents", "show", "INC 1"],
      ["incidents", "transition", "INC-1", "mitigated"],
      ["incidents", "transition", "INC-1", "sideways", "--reason", "x"],
      ["incidents", "transition", "INC-1", "--reason", "x"],
      ["incidents", "show", "INC-1", "--reason", "x"],
    ]) {
      const result = await run(argv);
      expect(result.code, argv.join(" ")).toBe(2);
      expect(result.stderr, argv.join(" ")).toContain("Usage: safedeploy incidents list");
    }
    expect(seen.url).toBe("untouched");
  });
});

describe("safedeploy proposals", () => {
  it("lists proposals as a table with filters, and as JSON", async () => {
    const result = await run(["proposals", "list", "--state", "pending", "--service", "checkout"]);
    expect(seen.url).toBe("/v1/proposals?state=pending&service=checkout");
    expect(result.stdout).toBe(
      "ID     SERVICE   KIND              STATE     INCIDENT  APPROVALS  CREATED\n" +
        "PRP-2  checkout  rollback-rollout  executed  INC-1     1          2026-11-24 09:00:05Z\n" +
        "PRP-1  checkout  rollback-rollout  pending   INC-1     0          2026-11-24 09:00:05Z\n",
    );
    const json = await run(["proposals", "list", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({ items: [executed, pending], next: null });
  });

  it("shows approvals, the action's branch, commit and PR, and the diff", async () => {
    const result = await run(["proposals", "show", "PRP-2"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "PRP-2  rollback-rollout  checkout  executed\n" +
        "  incident INC-1, created 2026-11-24 09:00:05Z\n" +
        "  revert abc123 under envs/prod/checkout\n" +
        "\nApprovals\n" +
        "AT                    BY     REASON\n" +
        "2026-11-24 09:04:00Z  alice  roll back now\n" +
        "\nAction\n" +
        "  branch  safedeploy/PRP-2\n" +
        "  commit  0123456789abcdef0123456789abcdef01234567\n" +
        "  PR      https://github.example.com/shop/env/pull/7\n" +
        `\nDiff\n${diff}`,
    );
    const pendingShown = await run(["proposals", "show", "PRP-1"]);
    expect(pendingShown.stdout).toContain(
      "Approvals\n(none)\n\nAction\n(not executed yet)\n\n" +
        "Diff approving would push (dry run)\n-image: checkout:v1.6.0\n+image: checkout:v1.5.2\n",
    );
  });

  it("approves with a reason (or a default one) and prints the new state", async () => {
    expect(await run(["proposals", "approve", "PRP-1", "--reason", "ship the revert"])).toEqual({
      code: 0,
      stdout: "PRP-1 is now approved (1 approval)\n",
      stderr: "",
    });
    expect(seen).toMatchObject({
      method: "POST",
      url: "/v1/proposals/PRP-1/approve",
      body: { reason: "ship the revert" },
    });
    expect((await run(["proposals", "approve", "PRP-1"])).code).toBe(0);
    expect(seen.body).toEqual({ reason: "approved with safedeploy proposals approve" });
    const json = await run(["proposals", "approve", "PRP-1", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: "PRP-1", state: "approved" });
  });

  it("rejects: 409 and 400 bodies are shown readably, --reason is required", async () => {
    expect(await run(["proposals", "reject", "PRP-2", "--reason", "too late"])).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "safedeploy proposals: 409 illegal_transition: PRP-2 is executed: it can no longer be rejected\n",
    });
    expect(await run(["proposals", "reject", "PRP-1", "--reason", "x"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "safedeploy proposals: 400 invalid_body: invalid request body\n  reason: too long\n",
    });
    const missing = await run(["proposals", "reject", "PRP-1"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("proposals reject needs --reason TEXT");
    for (const argv of [
      ["proposals"],
      ["proposals", "list", "--state", "maybe"],
      ["proposals", "approve"],
      ["proposals", "show", "PRP-1", "PRP-2"],
      ["proposals", "list", "--reason", "x"],
    ]) {
      expect((await run(argv)).code, argv.join(" ")).toBe(2);
    }
  });
});

describe("talking to the API", () => {
  it("401 names SAFEDEPLOY_TOKEN: missing, or refused", async () => {
    expect(await run(["snapshot"], { SAFEDEPLOY_TOKEN: "" })).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "safedeploy snapshot: the API needs a token (401): set SAFEDEPLOY_TOKEN to an API token\n",
    });
    expect(seen.authorization).toBeUndefined();
    const refused = await run(["gate", "checkout"], { SAFEDEPLOY_TOKEN: "wrong" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      "safedeploy gate: the API refused the token in SAFEDEPLOY_TOKEN " +
        "(401 missing or unknown token): set SAFEDEPLOY_TOKEN to a valid API token\n",
    );
  });

  it("403 says the token's role is too low", async () => {
    const result = await run(["proposals", "approve", "PRP-1"], { SAFEDEPLOY_TOKEN: VIEWER });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "safedeploy proposals: the token in SAFEDEPLOY_TOKEN is not allowed to do this " +
        "(403 role viewer, needs approver): it needs a higher role (approver or admin)\n",
    );
  });

  it("connection refused names the URL and how to start the API", async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    for (const argv of [["snapshot"], ["gate", "checkout"], ["proposals", "list"]]) {
      expect(await run(argv, { SAFEDEPLOY_API: url })).toEqual({
        code: 1,
        stdout: "",
        stderr:
          `safedeploy ${argv[0]!}: cannot reach the SafeDeploy API at ${url} (ECONNREFUSED): ` +
          "start it with `safedeploy up` or set SAFEDEPLOY_API\n",
      });
    }
  });

  it("a malformed SAFEDEPLOY_API is a usage error; a trailing slash is fine", async () => {
    const bad = await run(["snapshot"], { SAFEDEPLOY_API: "ftp://nowhere" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("SAFEDEPLOY_API is not an http(s) URL");
    expect((await run(["gate", "search"], { SAFEDEPLOY_API: `${api}/` })).code).toBe(0);
  });

  it("every command has --help and is in the tool's help", async () => {
    const help = await run(["--help"]);
    for (const name of ["snapshot", "gate", "incidents", "proposals"]) {
      expect(help.stdout).toContain(`  ${name} `);
      const own = await run([name, "--help"]);
      expect(own.code).toBe(0);
      expect(own.stdout.startsWith(`Usage: safedeploy ${name}`)).toBe(true);
      expect(own.stdout).toContain("SAFEDEPLOY_API");
    }
  });
});
