// @ts-check
// The SafeDeploy API at /v1 on the page's own origin: what its lists hold (the schema's views and
// what the gateway adds to them), requests with the signed-in token, and its refusals.

/** @typedef {import("@safedeploy/schema").BudgetStatus} BudgetStatus */
/** @typedef {import("@safedeploy/schema").Burn} Burn */
/** @typedef {import("@safedeploy/schema").DeadLetter} DeadLetter */
/** @typedef {import("@safedeploy/schema").FreezeView} FreezeView */
/** @typedef {import("@safedeploy/schema").GateView} GateView */
/** @typedef {import("@safedeploy/schema").GuardView} GuardView */
/** @typedef {import("@safedeploy/schema").IncidentView} IncidentView */
/** @typedef {import("@safedeploy/schema").ProposalPlan} ProposalPlan */
/** @typedef {import("@safedeploy/schema").ProposalView} ProposalView */
/** @typedef {import("@safedeploy/schema").RevertTarget} RevertTarget */
/** @typedef {import("@safedeploy/schema").Severity} Severity */
/** @typedef {import("@safedeploy/schema").TrainView} TrainView */

/**
 * One page of a list: `next` is the cursor of the following page.
 * @template T
 * @typedef {object} Page
 * @property {T[]} items
 * @property {string | null} next
 */

/**
 * One SLO of a service as the gateway's read model holds it (the gateway's `SloState`).
 * @typedef {object} SloState
 * @property {string} slo
 * @property {Severity} severity
 * @property {Burn | null} burn
 * @property {BudgetStatus | null} budget
 * @property {number | null} budgetRemaining
 * @property {number | null} errorRatio
 * @property {number} objective
 * @property {string} explanation
 * @property {string} evaluatedAt
 * @property {string} messageId
 */

/**
 * The last published gate verdict of a service (the gateway's `Verdict`): a GateView without
 * the service it is of.
 * @typedef {Omit<GateView, "service">} Verdict
 */

/**
 * A service of `/v1/services` (the gateway's `ServiceSummary`).
 * @typedef {object} ServiceSummary
 * @property {string} name
 * @property {Severity | null} severity
 * @property {number | null} budgetRemaining
 * @property {readonly SloState[]} slos
 * @property {string | null} activeIncident
 * @property {Verdict | null} gate
 * @property {string | null} owner
 * @property {boolean} inCatalog
 */

/**
 * An incident of `/v1/incidents` (the gateway's `Incident`).
 * @typedef {IncidentView & { slo?: string | null, causeId?: string, reason?: string }} Incident
 */

/**
 * A proposal of `/v1/proposals` (the gateway's `Proposal`). The gateway declares `plan` an
 * object; it carries the proposal's ProposalPlan.
 * @typedef {ProposalView & {
 *   summary?: string,
 *   plan?: ProposalPlan,
 *   dryRun?: boolean | null,
 *   failure?: { reason: string, needsTriage: boolean, at: string } | null,
 *   target?: RevertTarget,
 * }} Proposal
 */

/**
 * A freeze of `/v1/freezes` (the gateway's `Freeze`).
 * @typedef {FreezeView & { liftedAt?: string | null }} Freeze
 */

/**
 * A message of the dead-letter stream (the gateway's `DeadLetter` item): the dead letter, or
 * what arrived there when it is not one.
 * @typedef {object} DeadLetterItem
 * @property {number} seq
 * @property {string} storedAt
 * @property {DeadLetter | null} letter
 * @property {unknown} [unreadable]
 */

/**
 * What each list of the API holds, by its path under /v1.
 * @typedef {object} Lists
 * @property {ServiceSummary} services
 * @property {Incident} incidents
 * @property {TrainView} trains
 * @property {Proposal} proposals
 * @property {Freeze} freezes
 * @property {GuardView} guards
 * @property {DeadLetterItem} deadletters
 */

/** @typedef {keyof Lists} ListName */

/**
 * Requests to the API with the signed-in token.
 * @typedef {object} Api
 * @property {<K extends ListName>(list: K, limit: number, cursor?: string | null) => Promise<Page<Lists[K]>>} list
 *   A page of a list, the first unless `cursor` (a page's `next`) says which, e.g.
 *   `list("proposals", 100)`.
 * @property {(path: string, body: unknown) => Promise<unknown>} post A POST of a JSON body.
 * @property {(path: string) => Promise<unknown>} get A GET of a path under /v1 (e.g. history).
 * @property {(lastEventId: string | null, signal: AbortSignal) => Promise<Response>} events
 *   The event feed `/v1/events` as a text/event-stream response, from after `lastEventId`.
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
const isObject = (value) => typeof value === "object" && value !== null;

/** The API said no: `status`, the error `code` and `details` of its answer. */
export class ApiRefusal extends Error {
  /**
   * @param {number} status
   * @param {unknown} body the answer, `{ error, message, details }` when the API wrote it
   */
  constructor(status, body) {
    const answer = isObject(body) ? body : {};
    super(typeof answer.message === "string" ? answer.message : `HTTP ${status}`);
    this.name = "ApiRefusal";
    this.status = status;
    /** @type {string | null} */
    this.code = typeof answer.error === "string" ? answer.error : null;
    /** @type {readonly unknown[]} */
    this.details = Array.isArray(answer.details) ? answer.details : [];
  }
}

/**
 * What went wrong, for a person: the refusal with its details, or that the API is unreachable.
 * @param {unknown} error
 */
export function describeRefusal(error) {
  if (!(error instanceof ApiRefusal)) {
    return `Cannot reach the API: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (error.status === 403) return `Your token may not do this (${error.message}).`;
  const details = error.details
    .map((detail) =>
      isObject(detail) && "message" in detail
        ? `${Array.isArray(detail.path) ? detail.path.join(".") : (detail.path ?? "")} ${detail.message}`.trim()
        : JSON.stringify(detail),
    )
    .join("; ");
  return `${error.status}${error.code ? ` ${error.code}` : ""}: ${error.message}${details ? ` (${details})` : ""}`;
}

/**
 * The API as the signed-in user: every request carries `token()`, and a 401 (the token is no
 * longer good) calls `onRefusedToken` before the request fails.
 * @param {object} session
 * @param {() => string | null} session.token
 * @param {() => void} session.onRefusedToken
 * @param {typeof fetch} [session.fetch]
 * @returns {Api}
 */
export function createApi({ token, onRefusedToken, fetch = globalThis.fetch.bind(globalThis) }) {
  /**
   * @param {string} path
   * @param {{ method?: string, body?: unknown }} [options]
   * @returns {Promise<unknown>}
   */
  async function request(path, options = {}) {
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json", authorization: `Bearer ${token() ?? ""}` };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      cache: "no-store",
    });
    const text = await response.text();
    /** @type {unknown} */
    let body;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (!response.ok) {
      const refusal = new ApiRefusal(response.status, body);
      if (response.status === 401) onRefusedToken();
      throw refusal;
    }
    return body;
  }

  return {
    list: async (list, limit, cursor = null) => {
      const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      // The gateway validates its answers against the same views (its response schemas).
      return /** @type {Page<Lists[typeof list]>} */ (
        await request(`/v1/${list}?limit=${limit}${after}`)
      );
    },
    post: (path, body) => request(path, { method: "POST", body }),
    get: (path) => request(path),
    events: async (lastEventId, signal) => {
      /** @type {Record<string, string>} */
      const headers = { accept: "text/event-stream", authorization: `Bearer ${token() ?? ""}` };
      if (lastEventId) headers["last-event-id"] = lastEventId;
      const response = await fetch("/v1/events", { headers, signal, cache: "no-store" });
      if (response.status === 401) {
        onRefusedToken();
        throw new ApiRefusal(401, null);
      }
      return response;
    },
  };
}
