// The CLI's door to the gateway's HTTP API: base URL and token from the invocation's env, every
// answer validated with the views of @safedeploy/schema, every failure turned into one sentence.
import { z } from "zod";
import {
  DeadLetter,
  FreezeView,
  GateReason,
  GateVerdictKind,
  GuardView,
  RevertTarget,
  IncidentView,
  ProposalView,
  ResourceName,
  Severity,
} from "@safedeploy/schema";
import { EXIT, UsageError } from "./io.js";
import type { CliIo } from "./io.js";

/** Where the API listens when `SAFEDEPLOY_API` is unset (CONTRACT.md). */
export const DEFAULT_API = "http://127.0.0.1:8080";

/** How long one request may take before the CLI gives up. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A list endpoint's answer: `{ items, next }`. */
export const listOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next: z.string().nullable().optional() });

/** One SLO's latest evaluation as the services endpoints show it. */
export const SloStatus = z.looseObject({
  slo: z.string(),
  severity: Severity,
  budgetRemaining: z.number().nullable(),
  objective: z.number().optional(),
  explanation: z.string().optional(),
});
export type SloStatus = z.infer<typeof SloStatus>;

/** The latest promotion verdict of a service, without its name. */
export const ServiceGate = z.looseObject({
  allowed: z.boolean(),
  /** Absent from gateways before the gate was three-valued. */
  verdict: GateVerdictKind.optional(),
  reasons: z.array(GateReason),
  evidenceAge: z.number().nullable().optional(),
});

/** One service of GET /v1/services and of the snapshot. */
export const ServiceStatus = z.looseObject({
  name: ResourceName,
  severity: Severity.nullable(),
  budgetRemaining: z.number().nullable(),
  slos: z.array(SloStatus).default([]),
  activeIncident: z.string().nullable().default(null),
  gate: ServiceGate.nullable().default(null),
});
export type ServiceStatus = z.infer<typeof ServiceStatus>;

/** The gate answer (CONTRACT.md "gate"); `evaluatedAt` tolerated missing. */
export const GateAnswer = z.looseObject({
  service: ResourceName.optional(),
  allowed: z.boolean(),
  verdict: GateVerdictKind.optional(),
  reasons: z.array(GateReason),
  evaluatedAt: z.string().optional(),
  evidenceAge: z.number().nullable().optional(),
});
export type GateAnswer = z.infer<typeof GateAnswer>;

/** An incident with whatever the gateway adds (slo, reason...). */
export const Incident = IncidentView.loose();
export type Incident = z.infer<typeof Incident>;

/** A proposal with whatever the gateway adds (summary, failure...). */
export const Proposal = ProposalView.extend({
  summary: z.string().optional(),
  target: RevertTarget.optional(),
  failure: z
    .looseObject({ reason: z.string(), needsTriage: z.boolean().optional() })
    .nullable()
    .optional(),
}).loose();
export type Proposal = z.infer<typeof Proposal>;

export const Freeze = FreezeView.loose();
export type Freeze = z.infer<typeof Freeze>;

export const Guard = GuardView.loose();
export type Guard = z.infer<typeof Guard>;

/** What a gate answer says: its verdict, or (older gateways) pass when allowed, else block. */
export function verdictOf(gate: {
  readonly allowed: boolean;
  readonly verdict?: GateVerdictKind | undefined;
}): GateVerdictKind {
  return gate.verdict ?? (gate.allowed ? "pass" : "block");
}

/** One item of GET /v1/deadletters: the letter, or null with what arrived when it is not one. */
export const StoredDeadLetter = z.looseObject({
  seq: z.number(),
  storedAt: z.string(),
  letter: DeadLetter.loose().nullable(),
  unreadable: z.unknown(),
});
export type StoredDeadLetter = z.infer<typeof StoredDeadLetter>;

/** GET /v1/snapshot. */
export const SnapshotAnswer = z.looseObject({
  at: z.string().optional(),
  services: z.array(ServiceStatus),
  incidents: z.array(Incident),
  proposals: z.array(Proposal),
  freezes: z.array(Freeze),
  guards: z.array(Guard).default([]),
  blocked: z.array(z.string()).optional(),
});
export type SnapshotAnswer = z.infer<typeof SnapshotAnswer>;

/** The API refused the request (4xx/5xx), or answered something the CLI cannot read. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** HTTP status, or null when the answer was unreadable. */
  readonly status: number | null;
  /** The API's error code (`error` field), when it sent one. */
  readonly code: string | null;
  constructor(message: string, status: number | null, code: string | null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Nothing answered at the API's address. */
export class ApiUnreachable extends Error {
  override readonly name = "ApiUnreachable";
}

/** A validated answer and the JSON it came from (printed as is by `--json`). */
export interface Answer<T> {
  readonly value: T;
  readonly raw: unknown;
}

export interface ApiClient {
  readonly base: string;
  get<T extends z.ZodType>(path: string, schema: T): Promise<Answer<z.infer<T>>>;
  post<T extends z.ZodType>(path: string, body: unknown, schema: T): Promise<Answer<z.infer<T>>>;
}

const ErrorBody = z.looseObject({
  error: z.string().optional(),
  message: z.string().optional(),
  details: z.array(z.unknown()).optional(),
});

function describeDetail(detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (typeof detail === "object" && detail !== null) {
    const { path, field, message } = detail as Record<string, unknown>;
    const where = Array.isArray(path) ? path.join(".") : (field ?? path);
    const text = typeof message === "string" ? message : JSON.stringify(detail);
    return typeof where === "string" && where !== "" ? `${where}: ${text}` : text;
  }
  return JSON.stringify(detail);
}

function refusal(status: number, text: string, tokenSet: boolean): ApiError {
  let parsed: z.infer<typeof ErrorBody> | null = null;
  try {
    const body = ErrorBody.safeParse(JSON.parse(text));
    if (body.success) parsed = body.data;
  } catch {
    // not JSON: the status line says enough
  }
  const code = parsed?.error ?? null;
  const said = parsed?.message ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
  if (status === 401) {
    return new ApiError(
      tokenSet
        ? `the API refused the token in SAFEDEPLOY_TOKEN (401 ${said}): set SAFEDEPLOY_TOKEN to a valid API token`
        : "the API needs a token (401): set SAFEDEPLOY_TOKEN to an API token",
      status,
      code,
    );
  }
  if (status === 403) {
    return new ApiError(
      `the token in SAFEDEPLOY_TOKEN is not allowed to do this (403 ${said}): ` +
        "it needs a higher role (approver or admin)",
      status,
      code,
    );
  }
  const details = (parsed?.details ?? []).map((detail) => `\n  ${describeDetail(detail)}`);
  return new ApiError(
    `${status}${code === null ? "" : ` ${code}`}: ${said}${details.join("")}`,
    status,
    code,
  );
}

/**
 * A client of the API at `SAFEDEPLOY_API` (default {@link DEFAULT_API}) sending
 * `SAFEDEPLOY_TOKEN` as a bearer token. Throws {@link UsageError} for a malformed URL;
 * requests throw {@link ApiUnreachable} or {@link ApiError}.
 */
export function apiClient(io: CliIo, fetchImpl: typeof fetch = fetch): ApiClient {
  const configured = io.env.SAFEDEPLOY_API;
  const base = (configured === undefined || configured === "" ? DEFAULT_API : configured).replace(
    /\/+$/,
    "",
  );
  if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) {
    throw new UsageError(`SAFEDEPLOY_API is not an http(s) URL: ${JSON.stringify(base)}`);
  }
  const token = io.env.SAFEDEPLOY_TOKEN;
  const tokenSet = token !== undefined && token !== "";

  async function request<T extends z.ZodType>(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    schema: T,
  ): Promise<Answer<z.infer<T>>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (tokenSet) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetchImpl(`${base}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } } | null)?.cause?.code;
      if (error instanceof Error && error.name === "TimeoutError") {
        throw new ApiUnreachable(`the SafeDeploy API at ${base} did not answer within 30s`);
      }
      throw new ApiUnreachable(
        `cannot reach the SafeDeploy API at ${base}${cause === undefined ? "" : ` (${cause})`}: ` +
          "start it with `safedeploy up` or set SAFEDEPLOY_API",
      );
    }
    const text = await response.text();
    if (!response.ok) throw refusal(response.status, text, tokenSet);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new ApiError(
        `${method} ${path} answered ${response.status} with something that is not JSON`,
        response.status,
        null,
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.join(".") ?? "";
      throw new ApiError(
        `unexpected answer from ${method} ${path}: ${where === "" ? "" : `${where}: `}${issue?.message ?? "invalid"}`,
        response.status,
        null,
      );
    }
    return { value: parsed.data, raw };
  }

  return {
    base,
    get: (path, schema) => request("GET", path, undefined, schema),
    post: (path, body, schema) => request("POST", path, body, schema),
  };
}

/** `/v1/...` with each part percent-encoded and the defined query parameters appended. */
export function apiPath(
  parts: readonly string[],
  params: Readonly<Record<string, string | undefined>> = {},
): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) query.set(key, value);
  }
  const search = query.size === 0 ? "" : `?${query.toString()}`;
  return `/v1/${parts.map((part) => encodeURIComponent(part)).join("/")}${search}`;
}

/**
 * Runs `work` with a client of the API; an unreachable or refusing API becomes one line on
 * stderr (`safedeploy NAME: ...`) and exit 1.
 */
export async function withApi(
  name: string,
  io: CliIo,
  work: (api: ApiClient) => Promise<number>,
): Promise<number> {
  const api = apiClient(io);
  try {
    return await work(api);
  } catch (error) {
    if (!(error instanceof ApiError || error instanceof ApiUnreachable)) throw error;
    io.stderr(`safedeploy ${name}: ${error.message}\n`);
    return EXIT.negative;
  }
}

/** Prints a JSON answer as the API sent it. */
export function printJson(io: CliIo, raw: unknown): void {
  io.stdout(`${JSON.stringify(raw, null, 2)}\n`);
}

/** An answer as the API's JSON (`--json`) or as `describe` puts it; exit 0. */
export function printAnswer<T>(
  io: CliIo,
  answer: Answer<T>,
  json: boolean,
  describe: (value: T) => string,
): number {
  if (json) printJson(io, answer.raw);
  else io.stdout(describe(answer.value));
  return EXIT.ok;
}
