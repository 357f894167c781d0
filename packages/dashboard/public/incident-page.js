// @ts-check
// The incident page (`#incident/<id>`): what happened and when, from the audit log — the
// incident's events, its proposals, approvals and actions, and the service's deploys before it —
// beside its SLO's burn rate around it, with the same markers as the SLO charts.
/* global location, addEventListener */
import { byId, h, time } from "./dom.js";
import { budgetChart, burnChart, sloHistory } from "./slo-charts.js";

/** @typedef {import("./api.js").Api} Api */

/**
 * The gateway's `IncidentTimeline`.
 * @typedef {object} IncidentTimeline
 * @property {string} incidentId
 * @property {string} service
 * @property {string | null} slo
 * @property {string} openedAt
 * @property {string | null} resolvedAt
 * @property {{ at: string, type: string, summary: string, messageId: string | null, stream: string, seq: number }[]} entries
 */

const HOUR_MS = 3_600_000;
const PREFIX = "#incident/";

/** The incident id of the page's address, or null when it shows the board. */
export function incidentOfHash(hash = location.hash) {
  return hash.startsWith(PREFIX) ? decodeURIComponent(hash.slice(PREFIX.length)) : null;
}

/** @param {IncidentTimeline["entries"][number]} entry */
function entryItem(entry) {
  return h(
    "li",
    { "data-type": entry.type },
    h("time", { datetime: entry.at, text: time(entry.at) }),
    h("span", { class: "badge", text: entry.type.replace(/^(incidents|governance)\./, "") }),
    h("span", { class: "reason", text: entry.summary }),
    h("span", { class: "meta", text: `${entry.stream} #${entry.seq}` }),
  );
}

/**
 * Fills the incident page with the timeline and, for an SLO incident, its SLO's charts from a
 * day before it opened until a day after it was resolved (or now).
 * @param {Api} api
 * @param {string} id
 */
async function showIncident(api, id) {
  const page = byId("incident-page");
  const body = byId("incident-page-body");
  page.hidden = false;
  byId("board").dataset.view = "incident";
  body.setAttribute("aria-busy", "true");
  const path = `/v1/incidents/${encodeURIComponent(id)}`;
  const [timeline, deploy] = await Promise.all([
    /** @type {Promise<IncidentTimeline>} */ (api.get(`${path}/timeline`)),
    // "burn began 3 min after checkout revision 4a4fb30 synced", when deploy events say.
    /** @type {Promise<{ summary?: string | null } | null>} */ (
      api.get(`${path}/deploy`).catch(() => null)
    ),
  ]);
  byId("incident-page-title").textContent = `${timeline.incidentId} · ${timeline.service}`;
  /** @type {HTMLElement[]} */
  const parts = [
    h("p", {
      class: "meta",
      text: `opened ${time(timeline.openedAt)}${timeline.resolvedAt ? `, resolved ${time(timeline.resolvedAt)}` : ", not resolved"}`,
    }),
    h(
      "ol",
      { class: "timeline", "data-testid": "incident-timeline", "aria-label": `Timeline of ${id}` },
      timeline.entries.map(entryItem),
    ),
  ];
  if (deploy?.summary) {
    parts.splice(
      1,
      0,
      h("p", { class: "meta", "data-testid": "incident-deploy", text: deploy.summary }),
    );
  }
  if (timeline.slo !== null) {
    const opened = Date.parse(timeline.openedAt);
    const end =
      timeline.resolvedAt === null ? Date.now() : Date.parse(timeline.resolvedAt) + 24 * HOUR_MS;
    const history = await sloHistory(api, timeline.service, timeline.slo, {
      since: new Date(opened - 24 * HOUR_MS).toISOString(),
      until: new Date(Math.min(end, Date.now())).toISOString(),
    });
    const width = Math.max(320, Math.min(900, body.clientWidth || 640));
    parts.push(await burnChart(history, width), await budgetChart(history, width));
  }
  body.replaceChildren(...parts);
  body.removeAttribute("aria-busy");
}

/**
 * Follows the address: `#incident/<id>` shows that incident's page, anything else the board.
 * @param {Api} api
 * @param {(error: unknown) => void} onError
 */
export function followIncidentPage(api, onError) {
  const route = () => {
    const id = incidentOfHash();
    if (id === null) {
      byId("incident-page").hidden = true;
      delete byId("board").dataset.view;
      return;
    }
    showIncident(api, id).catch(onError);
  };
  if (!following) addEventListener("hashchange", route);
  following = true;
  route();
}

let following = false;
