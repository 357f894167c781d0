// @ts-check
// The Active incidents card: each open incident with its class, severity, state and timeline.
import { fillCard, h, time } from "./dom.js";
import { severityBadge } from "./services.js";

/** @typedef {import("@safedeploy/schema").IncidentState} IncidentState */
/** @typedef {import("@safedeploy/schema").IncidentTransition} IncidentTransition */
/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Incident} Incident */

/** @type {readonly IncidentState[]} */
const ACTIVE_INCIDENTS = ["detected", "investigating", "mitigated"];

/**
 * The transitions, led by the opening when the API lists only the moves after it.
 * @param {Incident} incident
 * @returns {readonly IncidentTransition[]}
 */
function timelineOf(incident) {
  if (incident.transitions.some((t) => t.from === null)) return incident.transitions;
  /** @type {IncidentTransition} */
  const opened = {
    from: null,
    to: "detected",
    at: incident.openedAt,
    actor: "system",
    reason: incident.reason ?? "opened",
  };
  return [opened, ...incident.transitions];
}

/** @param {IncidentTransition} t */
function transitionItem(t) {
  return h(
    "li",
    { "data-to": t.to },
    h("time", { datetime: t.at, text: time(t.at) }),
    h("span", { class: "transition", text: `${t.from ?? "∅"} → ${t.to}` }),
    h("span", { class: "actor", text: t.actor }),
    h("span", { class: "reason", text: t.reason }),
    t.link
      ? h("a", { href: t.link, rel: "noopener noreferrer", target: "_blank", text: "link" })
      : null,
  );
}

/** @param {Incident} incident */
function incidentCard(incident) {
  return h(
    "article",
    {
      class: "incident",
      "data-testid": "incident",
      "data-id": incident.id,
      "data-state": incident.state,
      "data-service": incident.service,
      "aria-label": `Incident ${incident.id}`,
    },
    h(
      "header",
      {},
      h("strong", { text: incident.id }),
      h("span", { text: incident.service }),
      h("span", { class: "badge", text: incident.class }),
      severityBadge(incident.severity),
      h("span", {
        class: `badge state-${incident.state}`,
        "data-testid": "incident-state",
        text: incident.state,
      }),
      h("a", { href: `#incident/${encodeURIComponent(incident.id)}`, text: "Timeline and charts" }),
    ),
    incident.reason ? h("p", { class: "summary", text: incident.reason }) : null,
    h("p", {
      class: "meta",
      text: `opened ${time(incident.openedAt)}, updated ${time(incident.updatedAt)}`,
    }),
    h(
      "ol",
      { class: "timeline", "aria-label": `Timeline of ${incident.id}`, "data-testid": "timeline" },
      timelineOf(incident).map(transitionItem),
    ),
  );
}

/** @param {readonly Incident[]} incidents */
function renderIncidents(incidents) {
  const active = incidents.filter((incident) => ACTIVE_INCIDENTS.includes(incident.state));
  if (active.length === 0) {
    fillCard("incidents", h("p", { class: "empty", text: "No active incidents." }));
    return;
  }
  fillCard("incidents", ...active.map(incidentCard));
}

/** @param {Api} api */
export async function loadIncidents(api) {
  renderIncidents((await api.list("incidents", 100)).items);
}
