// @ts-check
// The SafeDeploy dashboard: plain modern JavaScript modules, no build step, no outside requests.
// It reads the API at /v1 on its own origin with the token the user signs in with (kept in
// sessionStorage), and follows /v1/events to refresh whatever an event touches. This module
// wires the cards to the API and the feed, and signs in and out.
/* global document, HTMLInputElement */
import { ApiRefusal, createApi, describeRefusal } from "./api.js";
import { loadDeadLetters } from "./deadletters.js";
import { createDecisionDialog } from "./decision.js";
import { byId } from "./dom.js";
import { followHistory, refreshHistory } from "./history-cards.js";
import { loadFreezes } from "./freezes.js";
import { loadGuards } from "./guards.js";
import { loadIncidents } from "./incidents.js";
import { affectedBy, batchedRefresh, followEvents, showLive } from "./live.js";
import { loadProposals } from "./proposals.js";
import { loadServices } from "./services.js";
import { loadTrains } from "./trains.js";

/** @typedef {import("./api.js").ListName} ListName */

const TOKEN_KEY = "safedeploy.token";

let token = sessionStorage.getItem(TOKEN_KEY);
/** @type {AbortController | null} */
let events = null;

const api = createApi({
  token: () => token,
  onRefusedToken: () => signOut("The API refused this token: sign in again."),
});
const decision = createDecisionDialog({
  api,
  onDecided: () => refresh("proposals", "incidents", "services"),
});

/** @type {Record<ListName, () => Promise<void>>} */
const CARDS = {
  services: () => loadServices(api),
  incidents: () => loadIncidents(api),
  trains: () => loadTrains(api),
  proposals: () => loadProposals(api, decision.open),
  freezes: () => loadFreezes(api),
  guards: () => loadGuards(api),
  deadletters: () => loadDeadLetters(api),
};
const ALL_CARDS = /** @type {ListName[]} */ (Object.keys(CARDS));

/** @param {string | null} text */
function showBanner(text) {
  const banner = byId("banner");
  banner.textContent = text ?? "";
  banner.hidden = !text;
}

/**
 * Loads the cards named; the first failure, if any, shows in the banner.
 * @param {readonly ListName[]} names
 */
async function load(names) {
  const results = await Promise.allSettled(names.map((name) => CARDS[name]()));
  const failed = results.find((result) => result.status === "rejected");
  if (failed && token) showBanner(describeRefusal(failed.reason));
  else if (!failed) showBanner(null);
  document.body.dataset.loaded = String(Date.now());
}

const refresh = batchedRefresh(load);

/** @param {string} message why, shown under the sign-in form */
function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  events?.abort();
  events = null;
  byId("board").hidden = true;
  byId("login").hidden = false;
  byId("sign-out").hidden = true;
  byId("who").textContent = "";
  byId("login-error").textContent = message;
  showLive("off", "signed out");
  decision.close();
}

/** @param {string} candidate */
async function signIn(candidate) {
  token = candidate;
  try {
    await api.list("services", 1);
  } catch (error) {
    const status = error instanceof ApiRefusal ? error.status : null;
    signOut(status === 401 ? "This token is not valid." : describeRefusal(error));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  byId("login").hidden = true;
  byId("login-error").textContent = "";
  byId("board").hidden = false;
  byId("sign-out").hidden = false;
  showLive("off", "connecting…");
  events = new AbortController();
  void followEvents({
    api,
    signal: events.signal,
    onEvent: (type) => {
      const lists = affectedBy(type);
      if (lists.length > 0) refresh(...lists);
      refreshHistory(type);
    },
    onReconnected: () => refresh(...ALL_CARDS),
  });
  await load(ALL_CARDS);
  followHistory(api, (error) => showBanner(describeRefusal(error)));
}

byId("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId("token", HTMLInputElement);
  const value = input.value.trim();
  input.value = "";
  if (value !== "") void signIn(value);
});
byId("sign-out").addEventListener("click", () => signOut(""));

if (token) void signIn(token);
else signOut("");
