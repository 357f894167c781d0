import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "@safedeploy/cli";
import { publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import { eventSubject } from "@safedeploy/schema";
import { budgetEvaluationEvent, testServiceEnv, waitUntil } from "@safedeploy/testing";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { CATALOG, NAMES, TOKENS, bearer, startControlPlane } from "./gateway-harness.js";
import type { ControlPlane } from "./gateway-harness.js";

let plane: ControlPlane;
let app: FastifyInstance;
// Evidence from a minute ago on: fresh for the gate, which trusts three poll intervals (90 s).
const origin = Date.now() - 60_000;
const at = (second: number) => new Date(origin + second * 1_000).toISOString();

type Role = "viewer" | "approver" | "admin";
type Method = "GET" | "POST" | "DELETE";

const call = (
  method: Method,
  url: string,
  role: Role | null,
  payload?: unknown,
  target: FastifyInstance = app,
): Promise<LightMyRequestResponse> =>
  target.inject({
    method,
    url,
    headers: role === null ? {} : bearer(role),
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

// A typed view of a JSON body, as light-my-request's own `json<T>()` gives.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
const json = <T = Record<string, unknown>>(response: LightMyRequestResponse): T =>
  response.json<T>();

interface Item {
  id: string;
  state: string;
  service: string;
  kind?: string;
}

let incidentId = "";
let rollbackId = "";

beforeAll(async () => {
  plane = await startControlPlane();
  app = plane.app;
  // A healthy evaluation, then a fast burn: policy blocks, an incident opens with a rollback
  // proposal, and the audit service stores every message into the read model.
  await publishEvent(plane.harness.bus, budgetEvaluationEvent("checkout", at(1), "normal"));
  await waitUntil(
    async () =>
      json<{ allowed: boolean }>(await call("GET", "/v1/services/checkout/gate", "viewer")).allowed,
    15_000,
    () => "checkout never became promotable",
  );
  await publishEvent(
    plane.harness.bus,
    budgetEvaluationEvent("checkout", at(2), "fast-burn", { burn1h: 16, budgetRemaining: 0.4 }),
  );
  await waitUntil(
    async () => {
      const incidents = json<{ items: Item[] }>(
        await call("GET", "/v1/incidents?service=checkout", "viewer"),
      ).items;
      const proposals = json<{ items: Item[] }>(
        await call("GET", "/v1/proposals?service=checkout&state=pending", "viewer"),
      ).items;
      const rollback = proposals.find((p) => p.kind === "rollback-rollout");
      incidentId = incidents[0]?.id ?? "";
      rollbackId = rollback?.id ?? "";
      return incidentId !== "" && rollbackId !== "";
    },
    20_000,
    () => "no incident and rollback proposal in the read model",
  );
});

afterAll(async () => {
  await plane.stop();
});

/** Every endpoint of CONTRACT.md with the least role it needs and a valid body. */
const endpoints = (): [Method, string, Role, unknown?][] => [
  ["GET", "/v1/services", "viewer"],
  ["GET", "/v1/services/checkout", "viewer"],
  ["GET", "/v1/services/checkout/gate", "viewer"],
  ["GET", "/v1/incidents", "viewer"],
  ["GET", `/v1/incidents/${incidentId}`, "viewer"],
  [
    "POST",
    `/v1/incidents/${incidentId}/transitions`,
    "approver",
    { to: "investigating", reason: "x" },
  ],
  ["GET", `/v1/incidents/${incidentId}/evidence`, "viewer"],
  ["GET", "/v1/proposals", "viewer"],
  ["GET", `/v1/proposals/${rollbackId}`, "viewer"],
  ["POST", `/v1/proposals/${rollbackId}/approve`, "approver", { reason: "x" }],
  ["POST", `/v1/proposals/${rollbackId}/reject`, "approver", { reason: "x" }],
  ["GET", "/v1/freezes", "viewer"],
  ["POST", "/v1/freezes", "admin", { service: "checkout", until: at(9_999), reason: "x" }],
  ["DELETE", "/v1/freezes/checkout", "admin"],
  ["GET", "/v1/guards", "viewer"],
  ["POST", "/v1/guards/checkout/clear", "approver", { reason: "x" }],
  ["GET", "/v1/snapshot", "viewer"],
  ["GET", "/v1/audit/verify", "viewer"],
  ["GET", "/v1/deadletters", "viewer"],
  ["GET", "/v1/events", "viewer"],
];

describe("authentication and roles", () => {
  it("answers 401 without a token and with an unknown one, on every endpoint", async () => {
    for (const [method, url, , body] of endpoints()) {
      const none = await call(method, url, null, body);
      expect(none.statusCode, `${method} ${url}`).toBe(401);
      expect(json(none)).toMatchObject({ error: "unauthorized", details: [] });
      const unknown = await app.inject({
        method,
        url,
        headers: { authorization: "Bearer not-a-token" },
        ...(body === undefined ? {} : { payload: body as object }),
      });
      expect(unknown.statusCode, `${method} ${url}`).toBe(401);
    }
  });

  it("answers 403 when the role is too low, naming the role needed", async () => {
    for (const [method, url, role, body] of endpoints()) {
      const lower: Role[] =
        role === "admin" ? ["viewer", "approver"] : role === "approver" ? ["viewer"] : [];
      for (const low of lower) {
        const response = await call(method, url, low, body);
        expect(response.statusCode, `${method} ${url} as ${low}`).toBe(403);
        expect(json(response)).toMatchObject({ error: "forbidden" });
        expect(json<{ message: string }>(response).message).toContain(role);
      }
    }
  });

  it("without a tokens file every /v1 route answers 401, health still answers", async () => {
    const closed = await plane.gateway({ tokens: null });
    for (const [method, url, , body] of endpoints()) {
      const response = await call(method, url, "admin", body, closed);
      expect(response.statusCode, `${method} ${url}`).toBe(401);
      expect(json<{ message: string }>(response).message).toContain("SAFEDEPLOY_TOKENS");
    }
    expect((await call("GET", "/healthz", null, undefined, closed)).statusCode).toBe(200);
  });
});

describe("health, metrics, documents", () => {
  it("/healthz, /readyz and /metrics need no token", async () => {
    expect(json(await call("GET", "/healthz", null))).toEqual({ status: "ok" });
    const ready = await call("GET", "/readyz", null);
    expect(ready.statusCode).toBe(200);
    expect(json(ready)).toMatchObject({ status: "ok", checks: { postgres: "ok" } });
    const metrics = await call("GET", "/metrics", null);
    expect(metrics.headers["content-type"]).toContain("text/plain");
    expect(metrics.body).toMatch(
      /gateway_http_requests_total\{method="GET",route="\/v1\/services\/:name\/gate",status="200"\} \d+/,
    );
    expect(metrics.body).toContain("gateway_http_request_duration_seconds_bucket");
  });

  it("/readyz answers 503 naming the check that fails", async () => {
    const broken = await plane.gateway({
      readiness: { nats: () => Promise.reject(new Error("down")) },
    });
    const ready = await call("GET", "/readyz", null, undefined, broken);
    expect(ready.statusCode).toBe(503);
    expect(json(ready)).toEqual({
      status: "unavailable",
      checks: { postgres: "ok", nats: "unavailable" },
    });
  });

  it("/openapi.json lists every path, /docs serves the docs page", async () => {
    const document = json<{ paths: Record<string, unknown> }>(
      await call("GET", "/openapi.json", null),
    );
    const paths = Object.keys(document.paths);
    for (const path of [
      "/v1/services",
      "/v1/services/{name}",
      "/v1/services/{name}/gate",
      "/v1/incidents",
      "/v1/incidents/{id}",
      "/v1/incidents/{id}/transitions",
      "/v1/incidents/{id}/evidence",
      "/v1/proposals",
      "/v1/proposals/{id}",
      "/v1/proposals/{id}/approve",
      "/v1/proposals/{id}/reject",
      "/v1/freezes",
      "/v1/freezes/{service}",
      "/v1/snapshot",
      "/v1/audit/verify",
      "/v1/deadletters",
      "/v1/events",
      "/healthz",
      "/readyz",
      "/metrics",
    ]) {
      expect(paths, path).toContain(path);
    }
    const docs = await call("GET", "/docs/", null);
    expect(docs.statusCode).toBe(200);
    expect(docs.headers["content-type"]).toContain("text/html");
  });

  it("serves the dashboard at / without a token, with security headers", async () => {
    const page = await call("GET", "/", null);
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    const script = await call("GET", "/app.js", null);
    expect(script.statusCode).toBe(200);
    expect(script.headers["content-type"]).toContain("text/javascript");
    expect((await call("GET", "/../../etc/passwd", null)).statusCode).toBe(404);
    expect((await call("GET", "/nothing.js", null)).statusCode).toBe(404);
  });

  it("unknown routes answer a JSON 404", async () => {
    const response = await call("GET", "/v1/nothing-here", "viewer");
    expect(response.statusCode).toBe(404);
    expect(json(response)).toEqual({
      error: "not_found",
      message: "no route GET /v1/nothing-here",
      details: [],
    });
  });
});

describe("services and the gate", () => {
  it("lists services with budget, severity, active incident and verdict, page by page", async () => {
    const first = json<{ items: { name: string }[]; next: string | null }>(
      await call("GET", "/v1/services?limit=1", "viewer"),
    );
    expect(first.items.map((s) => s.name)).toEqual(["checkout"]);
    expect(first.next).not.toBeNull();
    const second = json<{ items: { name: string }[]; next: string | null }>(
      await call("GET", `/v1/services?limit=1&cursor=${first.next ?? ""}`, "viewer"),
    );
    expect(second).toMatchObject({ items: [{ name: "legacy" }], next: null });
    const all = json<{ items: Record<string, unknown>[] }>(
      await call("GET", "/v1/services", "viewer"),
    );
    expect(all.items[0]).toMatchObject({
      name: "checkout",
      owner: "team-payments",
      severity: "fast-burn",
      budgetRemaining: 0.4,
      activeIncident: incidentId,
      gate: { allowed: false },
    });
  });

  it("shows one service: spec, SLO state, incident, freezes and the live gate", async () => {
    const response = await call("GET", "/v1/services/checkout", "viewer");
    expect(response.statusCode).toBe(200);
    expect(json(response)).toMatchObject({
      name: "checkout",
      spec: { rollback: { path: "envs/prod/checkout" } },
      slos: [{ slo: "availability", severity: "fast-burn" }],
      incident: { id: incidentId, state: expect.any(String) as string },
      gate: { service: "checkout", allowed: false, live: true },
    });
  });

  it("the gate answers blocked with reasons, 404 for an unknown service, 400 for a bad name", async () => {
    const blocked = await call("GET", "/v1/services/checkout/gate", "viewer");
    expect(blocked.statusCode).toBe(200);
    const gate = json<{ allowed: boolean; reasons: { code: string; message: string }[] }>(blocked);
    expect(gate.allowed).toBe(false);
    expect(gate.reasons.length).toBeGreaterThan(0);
    expect(gate.reasons[0]).toEqual({
      code: expect.any(String) as string,
      message: expect.any(String) as string,
      value: expect.anything() as unknown,
      threshold: expect.anything() as unknown,
    });
    const legacy = json<{ reasons: { code: string }[] }>(
      await call("GET", "/v1/services/legacy/gate", "viewer"),
    );
    expect(legacy.reasons.map((r) => r.code)).toContain("no-rollback");
    const unknown = await call("GET", "/v1/services/nope/gate", "viewer");
    expect(unknown.statusCode).toBe(404);
    expect(json(unknown)).toMatchObject({ error: "not_found", details: [{ path: "name" }] });
    expect((await call("GET", "/v1/services/nope", "viewer")).statusCode).toBe(404);
    const bad = await call("GET", "/v1/services/Not_A_Name/gate", "viewer");
    expect(bad.statusCode).toBe(400);
    expect(json(bad)).toMatchObject({
      error: "invalid_request",
      details: [{ in: "params", path: "name" }],
    });
  });

  it("503 when policy does not answer; 500 hides what went wrong", async () => {
    const silent = await plane.gateway({
      sendCommand: () =>
        Promise.reject(Object.assign(new Error("no responders"), { code: "unavailable" })),
    });
    const unavailable = await call(
      "GET",
      "/v1/services/checkout/gate",
      "viewer",
      undefined,
      silent,
    );
    expect(unavailable.statusCode).toBe(503);
    expect(json(unavailable)).toEqual({
      error: "unavailable",
      message: "the policy service did not answer",
      details: [],
    });
    // The service page falls back to the last published verdict.
    expect(
      json(await call("GET", "/v1/services/checkout", "viewer", undefined, silent)),
    ).toMatchObject({
      gate: { allowed: false, live: false },
    });
    const broken = await plane.gateway({
      sendCommand: () => Promise.reject(new Error("password=hunter2 at 10.0.0.7")),
    });
    const internal = await call("GET", "/v1/services/checkout/gate", "viewer", undefined, broken);
    expect(internal.statusCode).toBe(500);
    expect(internal.body).not.toContain("hunter2");
    expect(json(internal)).toEqual({ error: "internal", message: "internal error", details: [] });
  });
});

describe("incidents", () => {
  it("lists with filters and shows one with its transitions; 404 and 400 named", async () => {
    const list = json<{ items: Item[] }>(
      await call("GET", "/v1/incidents?service=checkout&state=detected", "viewer"),
    );
    expect(list.items.map((i) => i.id)).toEqual([incidentId]);
    expect(
      json<{ items: Item[] }>(
        await call("GET", "/v1/incidents?service=checkout&state=resolved", "viewer"),
      ).items,
    ).toEqual([]);
    const one = json(await call("GET", `/v1/incidents/${incidentId}`, "viewer"));
    expect(one).toMatchObject({
      id: incidentId,
      service: "checkout",
      severity: "fast-burn",
      class: expect.stringMatching(/^P[0-3]$/) as string,
    });
    const missing = await call("GET", "/v1/incidents/INC-NOPE", "viewer");
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toMatchObject({ error: "not_found", message: "no incident INC-NOPE" });
    const badState = await call("GET", "/v1/incidents?state=on-fire", "viewer");
    expect(badState.statusCode).toBe(400);
    expect(json(badState)).toMatchObject({ details: [{ in: "querystring", path: "state" }] });
    const badLimit = await call("GET", "/v1/incidents?limit=0", "viewer");
    expect(json(badLimit)).toMatchObject({ details: [{ path: "limit" }] });
    const badCursor = await call("GET", "/v1/incidents?cursor=%21%21", "viewer");
    expect(badCursor.statusCode).toBe(400);
    expect(json(badCursor)).toMatchObject({ details: [{ path: "cursor" }] });
  });

  it("transitions as the token's name; 409 for an illegal move; 400 naming the field; 404", async () => {
    const url = `/v1/incidents/${incidentId}/transitions`;
    const moved = await call("POST", url, "approver", { to: "investigating", reason: "looking" });
    expect(moved.statusCode).toBe(200);
    expect(json(moved)).toMatchObject({ state: "investigating" });
    expect(json<{ transitions: { actor: string }[] }>(moved).transitions.at(-1)).toMatchObject({
      from: "detected",
      to: "investigating",
      actor: NAMES.approver,
      reason: "looking",
    });
    const illegal = await call("POST", url, "approver", { to: "detected", reason: "back" });
    expect(illegal.statusCode).toBe(409);
    expect(json(illegal)).toMatchObject({
      error: "conflict",
      message: "an incident cannot go from investigating to detected",
    });
    const badTo = await call("POST", url, "approver", { to: "on-fire", reason: "x" });
    expect(badTo.statusCode).toBe(400);
    expect(json(badTo)).toMatchObject({
      error: "invalid_request",
      details: [{ in: "body", path: "to" }],
    });
    expect(json<{ message: string }>(badTo).message).toContain("body.to");
    const noReason = await call("POST", url, "approver", { to: "mitigated", reason: " " });
    expect(json(noReason)).toMatchObject({ details: [{ path: "reason" }] });
    const badLink = await call("POST", url, "approver", {
      to: "mitigated",
      reason: "x",
      link: "nope",
    });
    expect(json(badLink)).toMatchObject({ details: [{ path: "link" }] });
    const notJson = await app.inject({
      method: "POST",
      url,
      headers: { ...bearer("approver"), "content-type": "application/json" },
      payload: "{",
    });
    expect(notJson.statusCode).toBe(400);
    expect(json(notJson)).toMatchObject({ error: "invalid_request" });
    const missing = await call("POST", "/v1/incidents/INC-NOPE/transitions", "approver", {
      to: "resolved",
      reason: "x",
    });
    expect(missing.statusCode).toBe(404);
  });

  it("returns the evidence bundle's six parts; 404 for an unknown incident", async () => {
    const response = await call("GET", `/v1/incidents/${incidentId}/evidence`, "viewer");
    expect(response.statusCode).toBe(200);
    const bundle = json<Record<string, { items: unknown[]; sources: unknown[] }>>(response);
    for (const part of ["decision", "slo", "budget", "proposal", "approval", "resolution"]) {
      expect(bundle[part], part).toMatchObject({
        items: expect.any(Array) as unknown,
        sources: expect.any(Array) as unknown,
      });
    }
    expect(bundle.decision?.items.length).toBeGreaterThan(0);
    expect(bundle.budget?.items.length).toBeGreaterThan(0);
    expect((await call("GET", "/v1/incidents/INC-NOPE/evidence", "viewer")).statusCode).toBe(404);
  });
});

describe("proposals", () => {
  it("lists with filters and shows one with approvals and action; 404; 400", async () => {
    const list = json<{ items: Item[] }>(
      await call("GET", "/v1/proposals?service=checkout", "viewer"),
    );
    expect(list.items.map((p) => p.id)).toContain(rollbackId);
    const one = json(await call("GET", `/v1/proposals/${rollbackId}`, "viewer"));
    expect(one).toMatchObject({
      id: rollbackId,
      incidentId,
      kind: "rollback-rollout",
      state: "pending",
      approvals: [],
      action: null,
    });
    expect((await call("GET", "/v1/proposals/PRP-NOPE", "viewer")).statusCode).toBe(404);
    const bad = await call("GET", "/v1/proposals?state=maybe", "viewer");
    expect(json(bad)).toMatchObject({ details: [{ path: "state" }] });
  });

  it("approving twice records one approval by the token's name and answers the same body", async () => {
    const url = `/v1/proposals/${rollbackId}/approve`;
    const first = await call("POST", url, "approver", { reason: "burning" });
    expect(first.statusCode).toBe(200);
    expect(json(first)).toMatchObject({
      id: rollbackId,
      state: "approved",
      approvals: [{ by: NAMES.approver, reason: "burning" }],
    });
    const second = await call("POST", url, "approver", { reason: "again" });
    expect(second.statusCode).toBe(200);
    expect(second.body).toBe(first.body);
    const missingReason = await call("POST", url, "approver", {});
    expect(missingReason.statusCode).toBe(400);
    expect(json(missingReason)).toMatchObject({ details: [{ in: "body", path: "reason" }] });
    const unknown = await call("POST", "/v1/proposals/PRP-NOPE/approve", "approver", {
      reason: "x",
    });
    expect(unknown.statusCode).toBe(404);
  });

  it("a rejected proposal cannot be approved: 409", async () => {
    const blocks = json<{ items: Item[] }>(
      await call("GET", "/v1/proposals?state=pending", "viewer"),
    ).items.filter((p) => p.id !== rollbackId);
    const target = blocks[0];
    expect(target, "a second pending proposal (a promotion block)").toBeDefined();
    const rejected = await call("POST", `/v1/proposals/${target!.id}/reject`, "approver", {
      reason: "not now",
    });
    expect(rejected.statusCode).toBe(200);
    expect(json(rejected)).toMatchObject({ state: "rejected" });
    const approve = await call("POST", `/v1/proposals/${target!.id}/approve`, "approver", {
      reason: "changed my mind",
    });
    expect(approve.statusCode).toBe(409);
    expect(json(approve)).toMatchObject({ error: "conflict" });
  });
});

/** The dead letters route's answer, as the test reads it. */
interface Listed {
  items: { seq: number; letter: { stream: string; consumer: string; reason: string } | null }[];
  next: string | null;
}

describe("freezes, snapshot, audit", () => {
  it("an admin opens and lifts a freeze; 404 for an unknown service; 400 naming the field", async () => {
    const opened = await call("POST", "/v1/freezes", "admin", {
      service: "legacy",
      until: new Date(Date.now() + 3_600_000).toISOString(),
      reason: "release week",
    });
    expect(opened.statusCode).toBe(201);
    expect(json(opened)).toMatchObject({ service: "legacy", actor: NAMES.admin, origin: "manual" });
    await waitUntil(
      async () =>
        json<{ items: { service: string }[] }>(
          await call("GET", "/v1/freezes?service=legacy", "viewer"),
        ).items.length === 1,
      10_000,
      () => "the freeze never reached the read model",
    );
    const bad = await call("POST", "/v1/freezes", "admin", {
      service: "legacy",
      until: "tomorrow",
      reason: "x",
    });
    expect(bad.statusCode).toBe(400);
    expect(json(bad)).toMatchObject({ details: [{ in: "body", path: "until" }] });
    const unknown = await call("POST", "/v1/freezes", "admin", {
      service: "nope",
      until: new Date(Date.now() + 60_000).toISOString(),
      reason: "x",
    });
    expect(unknown.statusCode).toBe(404);
    const unknownLift = await call("DELETE", "/v1/freezes/nope", "admin");
    expect(unknownLift.json()).toMatchObject({ error: "not_found" });
    const lifted = await call("DELETE", "/v1/freezes/legacy", "admin", { reason: "done" });
    expect(lifted.statusCode).toBe(200);
    expect(json<{ lifted: { service: string }[] }>(lifted).lifted).toHaveLength(1);
  });

  it("the snapshot holds services, incidents, proposals, freezes, blocked", async () => {
    const response = await call("GET", "/v1/snapshot", "viewer");
    expect(response.statusCode).toBe(200);
    const body = json<{ services: unknown[]; incidents: Item[]; blocked: string[] }>(response);
    expect(body.services.length).toBeGreaterThanOrEqual(2);
    expect(body.incidents.map((i) => i.id)).toContain(incidentId);
    expect(body.blocked).toContain("checkout");
  });

  it("the summary snapshot has totals instead of the services, the short lists as they are", async () => {
    const full = json<{ services: { severity: string | null }[]; incidents: Item[] }>(
      await call("GET", "/v1/snapshot", "viewer"),
    );
    const response = await call("GET", "/v1/snapshot?view=summary", "viewer");
    expect(response.statusCode).toBe(200);
    const summary = json<{
      view: string;
      services?: unknown;
      incidents: Item[];
      blocked: string[];
      totals: { services: number; bySeverity: Record<string, number>; blocked: number };
    }>(response);
    expect(summary.view).toBe("summary");
    expect(summary.services).toBeUndefined();
    // Every service of the catalog, evaluated (in the full form) or not yet (under `none`).
    expect(summary.totals.services).toBeGreaterThanOrEqual(full.services.length);
    const counted = Object.values(summary.totals.bySeverity).reduce((sum, n) => sum + n, 0);
    expect(counted).toBe(summary.totals.services);
    expect(summary.totals.blocked).toBe(summary.blocked.length);
    expect(summary.incidents.map((i) => i.id)).toContain(incidentId);
    expect(response.headers.etag).not.toBe(
      (await call("GET", "/v1/snapshot", "viewer")).headers.etag,
    );
    const wrong = await call("GET", "/v1/snapshot?view=everything", "viewer");
    expect(wrong.statusCode).toBe(400);
    expect(JSON.stringify(json(wrong))).toContain("view");
  });

  it("the snapshot carries an ETag: 304 while unchanged, a new one once the read model changed", async () => {
    const first = await call("GET", "/v1/snapshot", "viewer");
    let etag = first.headers.etag!;
    expect(etag).toMatch(/^W\/"[\w-]{27}"$/);
    expect(first.headers["content-type"]).toMatch(/^application\/json/);
    // Earlier tests' events may still be reaching the read model: a 200 is right only with a new
    // tag, and the read model settles within a few tries.
    let unchanged: LightMyRequestResponse | undefined;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      unchanged = await app.inject({
        method: "GET",
        url: "/v1/snapshot",
        headers: { ...bearer("viewer"), "if-none-match": etag },
      });
      if (unchanged.statusCode === 304) break;
      expect(
        unchanged.headers.etag,
        `a ${unchanged.statusCode} for If-None-Match must carry a new tag`,
      ).not.toBe(etag);
      etag = unchanged.headers.etag!;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(unchanged?.statusCode).toBe(304);
    expect(unchanged?.body).toBe("");

    const opened = await call("POST", "/v1/freezes", "admin", {
      service: "legacy",
      until: new Date(Date.now() + 3_600_000).toISOString(),
      reason: "snapshot etag",
    });
    expect(opened.statusCode).toBe(201);
    let changed: LightMyRequestResponse | undefined;
    await waitUntil(
      async () => {
        changed = await call("GET", "/v1/snapshot", "viewer");
        return json<{ freezes: { service: string }[] }>(changed).freezes.some(
          (f) => f.service === "legacy",
        );
      },
      10_000,
      () => "the freeze never reached the snapshot",
    );
    expect(changed?.headers.etag).not.toBe(etag);
    await call("DELETE", "/v1/freezes/legacy", "admin", { reason: "done" });
  });

  it("lists dead letters with their reasons, newest first, by stream, page by page", async () => {
    const { bus } = plane.harness;
    // A budget evaluation that is not JSON, and one missing its data: the policy service
    // dead-letters each, naming why.
    await bus.js.publish(eventSubject(bus.ns, "budget.evaluated", "payments"), "not json");
    const noData: Partial<ReturnType<typeof budgetEvaluationEvent>> = budgetEvaluationEvent(
      "payments",
      at(90),
      "normal",
    );
    delete noData.data;
    await bus.js.publish(
      eventSubject(bus.ns, "budget.evaluated", "payments"),
      JSON.stringify(noData),
    );

    let listed: Listed = { items: [], next: null };
    await waitUntil(
      async () => {
        listed = json<Listed>(await call("GET", "/v1/deadletters?stream=BUDGET", "viewer"));
        const reasons = listed.items.map((item) => item.letter?.reason ?? "");
        return (
          reasons.some((r) => r.startsWith("payload is not JSON")) &&
          reasons.some((r) => r.startsWith("invalid message: data: "))
        );
      },
      15_000,
      () => `both messages dead-lettered; listed: ${JSON.stringify(listed)}`,
    );
    const seqs = listed.items.map((item) => item.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    const letters = listed.items.map((item) => item.letter!);
    expect(new Set(letters.map((l) => l.stream))).toEqual(new Set(["BUDGET"]));
    // Each names the consumer that could not handle it (policy and incident both read BUDGET).
    for (const letter of letters) expect(letter.consumer).toMatch(/_(policy|incident)$/);
    expect(
      json<Listed>(await call("GET", "/v1/deadletters?stream=GOVERNANCE", "viewer")).items,
    ).toEqual([]);

    // One at a time, cursor to cursor, down to the oldest (newer ones may still arrive on top).
    const walked: number[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const query: string = cursor === "" ? "" : `&cursor=${cursor}`;
      const page: Listed = json<Listed>(
        await call("GET", `/v1/deadletters?stream=BUDGET&limit=1${query}`, "viewer"),
      );
      expect(page.items.length).toBeLessThanOrEqual(1);
      walked.push(...page.items.map((item) => item.seq));
      cursor = page.next;
    }
    expect(walked).toEqual([...new Set(walked)].sort((a, b) => b - a));
    expect(walked).toEqual(expect.arrayContaining(seqs.filter((seq) => seq <= walked[0]!)));

    // The CLI over a real port: the same letters as a table, and usage errors before any request.
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const cli = async (...argv: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await runCli({
        argv,
        env: { SAFEDEPLOY_API: url, SAFEDEPLOY_TOKEN: TOKENS.viewer },
        stdout: (text) => (stdout += text),
        stderr: (text) => (stderr += text),
      });
      return { code, stdout, stderr };
    };
    const table = await cli("deadletters", "--stream", "BUDGET");
    expect(table).toMatchObject({ code: 0, stderr: "" });
    expect(table.stdout).toMatch(/^SEQ +AT +FROM +KIND +DELIVERIES +REASON/);
    expect(table.stdout).toContain("payload is not JSON");
    expect(table.stdout).toMatch(
      /BUDGET\/\S+_(policy|incident) +invalid +1 +invalid message: data: /,
    );
    const asJson = await cli("deadletters", "--stream", "BUDGET", "--limit", "1", "--json");
    expect(asJson.code).toBe(0);
    expect((JSON.parse(asJson.stdout) as Listed).items).toHaveLength(1);
    expect(await cli("deadletters", "--stream", "NOPE")).toMatchObject({ code: 2 });
    expect((await cli("deadletters", "--limit", "0")).stderr).toContain(
      "--limit takes a whole number",
    );

    // A cursor of another list (not a sequence) is refused, naming the cursor.
    const alien = Buffer.from(JSON.stringify(["checkout"])).toString("base64url");
    const refused = await call("GET", `/v1/deadletters?cursor=${alien}`, "viewer");
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("cursor");

    const bad = await call("GET", "/v1/deadletters?stream=NOPE", "viewer");
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("stream");
  });

  it("audit verify reports an intact chain", async () => {
    const response = await call("GET", "/v1/audit/verify", "viewer");
    expect(response.statusCode).toBe(200);
    const report = json<{ intact: boolean; rows: number; firstBad: unknown }>(response);
    expect(report).toMatchObject({ intact: true, firstBad: null });
    expect(report.rows).toBeGreaterThan(3);
  });

  it("rate limits per token with a JSON 429", async () => {
    const limited = await plane.gateway({ rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) {
      expect((await call("GET", "/v1/audit/verify", "viewer", undefined, limited)).statusCode).toBe(
        200,
      );
    }
    const refused = await call("GET", "/v1/audit/verify", "viewer", undefined, limited);
    expect(refused.statusCode).toBe(429);
    expect(json(refused)).toMatchObject({ error: "rate_limited" });
    // Another token has its own budget; health is never limited.
    expect((await call("GET", "/v1/audit/verify", "admin", undefined, limited)).statusCode).toBe(
      200,
    );
    expect((await call("GET", "/healthz", null, undefined, limited)).statusCode).toBe(200);
  });
});

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Reads server-sent events from a real connection until `count` have arrived. */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  count: number,
  onOpen: () => Promise<void>,
): Promise<SseEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort();
  }, 15_000);
  try {
    const response = await fetch(url, { headers, signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    const events: SseEvent[] = [];
    let opened = false;
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      if (!opened) {
        opened = true;
        await onOpen();
      }
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          frame
            .split("\n")
            .filter((line) => !line.startsWith(":") && line.includes(": "))
            .map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
        ) as Partial<SseEvent>;
        if (fields.data !== undefined && fields.id !== undefined) {
          events.push({ id: fields.id, event: fields.event ?? "message", data: fields.data });
        }
      }
    }
    controller.abort();
    return events;
  } finally {
    clearTimeout(timer);
  }
}

describe("server-sent events over a real port", () => {
  it("delivers a newly published event and resumes from Last-Event-ID", async () => {
    const live = await plane.gateway({});
    const address = await live.listen({ host: "127.0.0.1", port: 0 });
    const url = `${address}/v1/events?types=budget.evaluated`;
    const first = budgetEvaluationEvent("legacy", at(100), "normal");
    const [event] = await readEvents(url, bearer("viewer"), 1, async () => {
      await publishEvent(plane.harness.bus, first);
    });
    expect(event).toMatchObject({ event: "budget.evaluated" });
    expect(JSON.parse(event!.data)).toMatchObject({ id: first.id, service: "legacy" });

    // Published while nobody listens: a client resuming from the last id gets it, and only it.
    const second = budgetEvaluationEvent("legacy", at(101), "normal");
    await publishEvent(plane.harness.bus, second);
    const [resumed] = await readEvents(
      url,
      { ...bearer("viewer"), "last-event-id": event!.id },
      1,
      () => Promise.resolve(),
    );
    expect(JSON.parse(resumed!.data)).toMatchObject({ id: second.id });

    // EventSource cannot send headers: the token may come as access_token on this route only.
    const viaQuery = await fetch(`${address}/v1/events?access_token=${TOKENS.viewer}`, {
      signal: AbortSignal.timeout(2_000),
    });
    expect(viaQuery.status).toBe(200);
    await viaQuery.body?.cancel();
    const elsewhere = await fetch(`${address}/v1/snapshot?access_token=${TOKENS.viewer}`);
    expect(elsewhere.status).toBe(401);
    const badId = await fetch(url, { headers: { ...bearer("viewer"), "last-event-id": "x" } });
    expect(badId.status).toBe(400);
    await live.close();
  });
});

describe("the gateway service", () => {
  it("starts from the environment, listens, answers with its tokens file and stops cleanly", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gateway-"));
    const tokens = join(dir, "tokens.yaml");
    await writeFile(tokens, `- { name: ci, role: viewer, sha256: ${tokenHash("ci-token")} }\n`);
    let url = "";
    const handle = await startService(
      createGatewayService({ onListening: (address) => (url = address) }),
      {
        env: testServiceEnv(plane.harness, {
          DATABASE_URL: plane.database.url,
          SAFEDEPLOY_CATALOG: CATALOG,
          SAFEDEPLOY_TOKENS: tokens,
          GATEWAY_PORT: "0",
        }),
      },
    );
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const gate = await fetch(`${url}/v1/services/checkout/gate`, {
        headers: { authorization: "Bearer ci-token" },
      });
      expect(gate.status).toBe(200);
      expect(await gate.json()).toMatchObject({ service: "checkout", allowed: false });
    } finally {
      expect(await handle.shutdown("test")).toBe("clean");
    }
  });
});
