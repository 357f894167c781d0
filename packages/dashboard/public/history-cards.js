// @ts-check
// The cards drawn from the audit log's history — SLO charts, DORA metrics — and the incident
// page: loaded after sign-in, and reloaded (at most once a second) when an event can change them.
import { loadDora } from "./dora.js";
import { followIncidentPage } from "./incident-page.js";
import { loadSloCharts } from "./slo-charts.js";

/** @typedef {import("./api.js").Api} Api */

/** @type {{ api: Api, onError: (error: unknown) => void } | null} */
let session = null;
/** @type {number | undefined} */
let timer;

/** Loads both history cards; a failure shows through `onError`. */
function loadAll() {
  if (session === null) return;
  const { api, onError } = session;
  void Promise.all([loadSloCharts(api), loadDora(api)]).catch(onError);
}

/**
 * Starts the history cards and the incident page for the signed-in `api`.
 * @param {Api} api
 * @param {(error: unknown) => void} onError
 */
export function followHistory(api, onError) {
  session = { api, onError };
  loadAll();
  followIncidentPage(api, onError);
}

/**
 * Reloads the history cards soon when an event of `type` can change them.
 * @param {string} type
 */
export function refreshHistory(type) {
  const relevant =
    type.startsWith("budget.") ||
    type.startsWith("incidents.") ||
    type === "governance.deploy-recorded" ||
    type.startsWith("governance.freeze") ||
    type === "governance.action-completed";
  if (!relevant || timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    loadAll();
  }, 1_000);
}
