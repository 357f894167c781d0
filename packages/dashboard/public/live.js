// @ts-check
// Live updates: the page follows /v1/events and refreshes whichever lists an event can change.
import { ApiRefusal } from "./api.js";
import { byId } from "./dom.js";
import { createSseParser } from "./sse.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").ListName} ListName */

/**
 * Which lists an event of `type` can change.
 * @param {string} type
 * @returns {ListName[]}
 */
export function affectedBy(type) {
  if (type.startsWith("budget.")) return ["services"];
  if (type.startsWith("incidents.")) return ["incidents", "services"];
  if (type.startsWith("governance.freeze")) return ["freezes", "services"];
  if (type.startsWith("governance.guard")) return ["guards", "services"];
  if (type.startsWith("governance.train-") || type === "governance.follow-up") return ["trains"];
  if (type.startsWith("governance.proposal") || type.startsWith("governance.action")) {
    return ["proposals"];
  }
  if (type.startsWith("governance.")) return ["services", "proposals"];
  // Dead letters are not envelopes: the feed sends them untyped.
  if (type === "message") return ["deadletters"];
  return [];
}

/**
 * Shows whether the page follows the feed (`on`) or not (`off`), and why.
 * @param {"on" | "off"} state
 * @param {string} text
 */
export function showLive(state, text) {
  const live = byId("live");
  live.className = `live ${state}`;
  live.textContent = text;
  live.dataset.state = state;
}

/**
 * A refresh of lists that waits `delay` ms and then loads, once, every list asked for meanwhile
 * (however many events ask for it).
 * @param {(names: ListName[]) => Promise<void>} load
 * @param {number} [delay]
 * @returns {(...names: ListName[]) => void}
 */
export function batchedRefresh(load, delay = 150) {
  /** @type {Set<ListName>} */
  const names = new Set();
  /** @type {number | undefined} */
  let timer;
  return (...asked) => {
    for (const name of asked) names.add(name);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const batch = [...names];
      names.clear();
      void load(batch);
    }, delay);
  };
}

/**
 * Follows the event feed until `signal` aborts, reconnecting with Last-Event-ID. Calls
 * `onEvent` with each event's type, and `onReconnected` after a dropped connection is back
 * (anything may have changed meanwhile). A refused token ends it (the API signs out).
 * @param {object} follow
 * @param {Api} follow.api
 * @param {AbortSignal} follow.signal
 * @param {(type: string) => void} follow.onEvent
 * @param {() => void} follow.onReconnected
 */
export async function followEvents({ api, signal, onEvent, onReconnected }) {
  const parser = createSseParser((event) => onEvent(event.type));
  let first = true;
  while (!signal.aborted) {
    try {
      const response = await api.events(parser.lastEventId, signal);
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      showLive("on", "live");
      if (!first) onReconnected();
      first = false;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (error) {
      if (error instanceof ApiRefusal && error.status === 401) return;
      // A dropped connection: reconnect below, resuming from the last event id.
    }
    if (signal.aborted) return;
    showLive("off", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, parser.retry ?? 2000));
  }
}
