// @ts-check
// Server-sent events over fetch: EventSource cannot send an Authorization header, so the page
// reads /v1/events with fetch and a stream reader, and this parser turns text into events.

/**
 * One event of the stream: `type` is "message" when the server named none.
 * @typedef {{ id: string | null, type: string, data: string }} SseEvent
 */

/**
 * @typedef {{
 *   push(text: string): void,
 *   readonly lastEventId: string | null,
 *   readonly retry: number | null,
 * }} SseParser
 */

/**
 * A parser of the text/event-stream format. `push(text)` takes any chunk of the stream and
 * calls `onEvent({ id, type, data })` for each complete event (`type` defaults to "message");
 * `lastEventId` is the id to resume from and `retry` the reconnection delay the server asked for.
 * @param {(event: SseEvent) => void} onEvent
 * @returns {SseParser}
 */
export function createSseParser(onEvent) {
  let buffer = "";
  /** @type {string[]} */
  let data = [];
  let type = "";
  /** @type {{ lastEventId: string | null, retry: number | null }} */
  const state = { lastEventId: null, retry: null };

  /** @param {string} text */
  function line(text) {
    if (text === "") {
      if (data.length > 0)
        onEvent({ id: state.lastEventId, type: type || "message", data: data.join("\n") });
      data = [];
      type = "";
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") type = value;
    else if (field === "id" && !value.includes("\0")) state.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) state.retry = Number(value);
  }

  return {
    push(text) {
      buffer += text;
      for (;;) {
        const match = /\r\n|\r(?!$)|\n/.exec(buffer);
        if (match === null) break;
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    },
    get lastEventId() {
      return state.lastEventId;
    },
    get retry() {
      return state.retry;
    },
  };
}
