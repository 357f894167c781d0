import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { testServiceEnv } from "@safedeploy/testing";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import { CATALOG, startControlPlane } from "./gateway-harness.js";
import type { ControlPlane } from "./gateway-harness.js";

// Every operation of the gateway's own OpenAPI document, driven with hostile path parameters,
// queries and bodies against the real gateway (its service on a real port, real PostgreSQL and
// NATS, the services that answer its commands): no answer is a 5xx, and every 4xx names the
// field it refuses (or is a state conflict, which has none).
const TOKEN = "fuzz-admin-token";
let plane: ControlPlane;
const handles: ServiceHandle[] = [];
let url = "";

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly pathParams: readonly string[];
  readonly queryParams: readonly string[];
  readonly bodyFields: readonly string[] | null;
}

interface OpenApi {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { in: string; name: string }[];
        requestBody?: { content?: Record<string, { schema?: { properties?: object } }> };
      }
    >
  >;
}

function operationsOf(document: OpenApi): Operation[] {
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    if (!path.startsWith("/v1/")) continue;
    for (const [method, operation] of Object.entries(methods)) {
      const parameters = operation.parameters ?? [];
      const schema = operation.requestBody?.content?.["application/json"]?.schema;
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === "path").map((p) => p.name),
        queryParams: parameters.filter((p) => p.in === "query").map((p) => p.name),
        bodyFields:
          operation.requestBody === undefined ? null : Object.keys(schema?.properties ?? {}),
      });
    }
  }
  return operations;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** Strings that broke or could break an edge: NUL, spaces, emoji, huge numbers, odd dates. */
const hostileText = fc.oneof(
  fc.constantFrom(
    "\u0000",
    "INC-1\u0000",
    "a b",
    " ",
    "😀",
    "INC-😀",
    "../../etc/passwd",
    "%00",
    "__proto__",
    "constructor",
    "prototype",
    "9".repeat(40),
    "-1",
    "0",
    "1e309",
    "NaN",
    "Infinity",
    "true",
    "null",
    "2026-13-45T99:99:99Z",
    "+275760-09-13T00:00:00.000Z",
    "0000-01-01T00:00:00Z",
    "x".repeat(1_500),
    "checkout",
    "INC-1",
    "line\nbreak",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    // Cursors: the right shape with what PostgreSQL refuses.
    b64(["+275760-09-13T00:00:00.000Z", "INC-1"]),
    b64(["Tue, 01 Jan 0000 00:00:00 GMT", "INC-1"]),
    b64(["2026-01-01T00:00:00.000Z", "INC-\u0000"]),
    b64(["99999999999999999999"]),
    b64(["00000000000000000001"]),
    b64(["che\u0000ckout"]),
    b64({ __proto__: { admin: true } }),
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.bigInt().map(String),
  fc.double().map(String),
);

/** JSON values of every type, with prototype-pollution keys among the object keys. */
const hostileJson = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hostileText,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(1e308, -1e308, 2 ** 64, Number.MAX_SAFE_INTEGER + 2),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(fc.constantFrom("__proto__", "constructor", "prototype"), fc.string()),
      tie("value"),
      { maxKeys: 4 },
    ),
  ),
})).value;

function bodyFor(fields: readonly string[]) {
  return fc.oneof(
    hostileJson,
    fc.record(Object.fromEntries(fields.map((field) => [field, hostileJson])), {
      requiredKeys: [],
    }),
    fc.constantFrom(
      '{"__proto__":{"admin":true},"reason":"x"}',
      '{"constructor":{"prototype":{}}}',
    ),
  );
}

function requestFor(operation: Operation) {
  return fc.record({
    // "." and ".." are dot segments: every client (WHATWG URL) folds them out of the path, even
    // percent-encoded, so they name another route and cannot reach this one.
    params: fc.tuple(
      ...operation.pathParams.map(() =>
        hostileText.filter((text) => text !== "." && text !== ".."),
      ),
    ),
    query: fc.array(fc.tuple(fc.constantFrom(...operation.queryParams, "extra"), hostileText), {
      maxLength: 3,
    }),
    body: operation.bodyFields === null ? fc.constant(undefined) : bodyFor(operation.bodyFields),
  });
}

beforeAll(async () => {
  plane = await startControlPlane();
  const dir = await mkdtemp(join(tmpdir(), "gateway-fuzz-"));
  const tokens = join(dir, "tokens.yaml");
  await writeFile(tokens, `- { name: fuzz, role: admin, sha256: ${tokenHash(TOKEN)} }\n`);
  const env = testServiceEnv(plane.harness, {
    DATABASE_URL: plane.database.url,
    SAFEDEPLOY_CATALOG: CATALOG,
    SAFEDEPLOY_TOKENS: tokens,
    SAFEDEPLOY_HOME: join(dir, "home"),
    GATEWAY_PORT: "0",
  });
  handles.push(await startService(createReleaseTrainService({ tickMs: 200 }), { env }));
  handles.push(
    await startService(
      createGatewayService({
        onListening: (address) => (url = address),
        rateLimitPerMinute: 1_000_000,
        events: { pollMs: 100, heartbeatMs: 5_000, streamsPerToken: 10_000 },
      }),
      { env },
    ),
  );
});

afterAll(async () => {
  for (const handle of handles.reverse()) await handle.shutdown("test");
  await plane.stop();
});

interface Answer {
  status: number;
  body: string;
}

async function send(
  operation: Operation,
  input: { params: string[]; query: [string, string][]; body: unknown },
): Promise<Answer> {
  let path = operation.path;
  operation.pathParams.forEach((name, i) => {
    path = path.replace(`{${name}}`, encodeURIComponent(input.params[i] ?? ""));
  });
  const query = new URLSearchParams(input.query).toString();
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort();
  }, 10_000);
  try {
    const response = await fetch(`${url}${path}${query === "" ? "" : `?${query}`}`, {
      method: operation.method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(input.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(input.body === undefined
        ? {}
        : { body: typeof input.body === "string" ? input.body : JSON.stringify(input.body) }),
      signal: controller.signal,
    });
    // An event stream that was accepted never ends: its status is the answer.
    if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      controller.abort();
      return { status: response.status, body: "" };
    }
    return { status: response.status, body: await response.text() };
  } finally {
    clearTimeout(timer);
  }
}

/** A 4xx names what it refuses: `details` with `in` and `path`, or a conflict of state. */
function namesTheField(answer: Answer): boolean {
  const body = JSON.parse(answer.body) as { error?: string; details?: { in?: string }[] };
  if (answer.status === 409 && body.error === "conflict") return true;
  return (body.details ?? []).some((detail) => typeof detail.in === "string");
}

describe("the gateway under hostile input", () => {
  it("answers every documented operation without a 5xx, naming the field of every 4xx", async () => {
    const document = (await (await fetch(`${url}/openapi.json`)).json()) as OpenApi;
    const operations = operationsOf(document);
    expect(operations.length).toBeGreaterThanOrEqual(20);
    const seen = new Map<string, number>();
    for (const operation of operations) {
      await fc.assert(
        fc.asyncProperty(requestFor(operation), async (input) => {
          const answer = await send(operation, input);
          const key = `${operation.method} ${operation.path} ${answer.status}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          const shown = `${operation.method} ${operation.path} ${JSON.stringify(input)} → ${answer.status} ${answer.body.slice(0, 300)}`;
          expect(answer.status, shown).toBeLessThan(500);
          if (answer.status >= 400) expect(namesTheField(answer), shown).toBe(true);
        }),
        { numRuns: 120 },
      );
    }
    // The run reached past validation too (e.g. 404s for well-formed unknown ids).
    expect([...seen.keys()].some((key) => key.endsWith(" 404"))).toBe(true);
  }, 120_000);
});
