// @ts-check
// Time-series charts drawn with uPlot (the gateway serves the `uplot` package's own files as
// ./uPlot.esm.js and ./uPlot.min.css: no CDN), with vertical markers for incidents, deploys and
// freezes and horizontal threshold lines. Each chart's element keeps its uPlot instance as
// `chart` and its point and marker counts as data attributes, for people and the browser test.
/* global devicePixelRatio */
import { h, time } from "./dom.js";

/** @typedef {import("uplot")} UPlot */
/** @typedef {import("uplot").Options} UPlotOptions */
/** @typedef {typeof import("uplot")} UPlotClass */

/**
 * A moment to mark (the gateway's `SloHistory` marker).
 * @typedef {object} ChartMarker
 * @property {"incident-opened" | "incident-resolved" | "deploy" | "freeze-opened" | "freeze-lifted"} kind
 * @property {string} at
 * @property {string} ref
 * @property {string} label
 */

/**
 * One line of a chart.
 * @typedef {object} Line
 * @property {string} label
 * @property {readonly (number | null)[]} values
 * @property {string} color
 */

/** How each kind of marker is drawn: its colour and whether its line is dashed. */
export const MARKER_STYLE = {
  "incident-opened": { color: "#c53030", dash: false, name: "incident opened" },
  "incident-resolved": { color: "#1f8a4c", dash: false, name: "incident resolved" },
  deploy: { color: "#2b6cb0", dash: true, name: "deploy" },
  "freeze-opened": { color: "#b7791f", dash: false, name: "freeze" },
  "freeze-lifted": { color: "#b7791f", dash: true, name: "freeze ended" },
};

/** Colours of successive lines. */
export const LINE_COLORS = ["#6b46c1", "#2b6cb0", "#c05621", "#2c7a7b", "#b83280", "#4a5568"];

/** @type {Promise<UPlotClass> | null} */
let loading = null;

/** uPlot, loaded once from the gateway (a variable specifier keeps the compiler off the file). */
function uPlotClass() {
  const url = "./uPlot.esm.js";
  loading ??= import(url).then((module) => /** @type {UPlotClass} */ (module.default));
  return loading;
}

/**
 * Draws the markers as vertical lines and the thresholds as horizontal ones, inside the plot.
 * @param {UPlot} u
 * @param {readonly ChartMarker[]} markers
 * @param {readonly { value: number, label: string }[]} thresholds
 */
function drawOverlays(u, markers, thresholds) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.lineWidth = 1.5 * devicePixelRatio;
  for (const marker of markers) {
    const style = MARKER_STYLE[marker.kind];
    const x = u.valToPos(Date.parse(marker.at) / 1000, "x", true);
    if (!(x >= bbox.left && x <= bbox.left + bbox.width)) continue;
    ctx.strokeStyle = style.color;
    ctx.setLineDash(style.dash ? [6, 4] : []);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
  }
  ctx.setLineDash([2, 3]);
  ctx.strokeStyle = "#c53030";
  ctx.fillStyle = "#c53030";
  ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
  for (const threshold of thresholds) {
    const y = u.valToPos(threshold.value, "y", true);
    if (!(y >= bbox.top && y <= bbox.top + bbox.height)) continue;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    // At the right end, clear of the y axis's numbers.
    const width = ctx.measureText(threshold.label).width;
    ctx.fillText(threshold.label, bbox.left + bbox.width - width - 4, y - 3);
  }
  ctx.restore();
}

/** @param {readonly ChartMarker[]} markers */
function markerLegend(markers) {
  if (markers.length === 0) return h("p", { class: "meta", text: "Nothing marked in this range." });
  return h(
    "ul",
    { class: "markers", "aria-label": "Marked moments" },
    markers.map((marker) =>
      h(
        "li",
        { "data-kind": marker.kind },
        h("span", { class: `swatch marker-${marker.kind}`, "aria-hidden": "true" }),
        h("time", { datetime: marker.at, text: time(marker.at) }),
        marker.kind.startsWith("incident")
          ? h("a", { href: `#incident/${encodeURIComponent(marker.ref)}`, text: marker.label })
          : h("span", { text: marker.label }),
      ),
    ),
  );
}

/**
 * A time-series chart of `lines` over `times` (seconds since the epoch) into a new element.
 * @param {object} spec
 * @param {string} spec.title
 * @param {string} spec.testId
 * @param {readonly number[]} spec.times
 * @param {readonly Line[]} spec.lines
 * @param {readonly ChartMarker[]} spec.markers
 * @param {readonly { value: number, label: string }[]} [spec.thresholds]
 * @param {(value: number) => string} [spec.format] how the y axis and legend show a value
 * @param {{ min?: number, max?: number }} [spec.range] fixed ends of the y axis
 * @param {number} [spec.width]
 * @returns {Promise<HTMLElement>}
 */
export async function timeChart(spec) {
  const uPlot = await uPlotClass();
  const format = spec.format ?? ((value) => value.toFixed(2));
  const plot = h("div", { class: "plot" });
  const figure = h(
    "figure",
    {
      class: "chart",
      "data-testid": spec.testId,
      "data-points": spec.times.length,
      "data-markers": spec.markers.length,
    },
    h("figcaption", { text: spec.title }),
    plot,
    markerLegend(spec.markers),
  );
  if (spec.times.length === 0) {
    plot.append(h("p", { class: "empty", text: "No evaluations in this range." }));
    return figure;
  }
  const thresholds = spec.thresholds ?? [];
  const { min, max } = spec.range ?? {};
  /** @type {UPlotOptions} */
  const options = {
    width: spec.width ?? 640,
    height: 220,
    scales: {
      x: { time: true },
      y: {
        range: (_u, low, high) => [
          min ?? Math.min(low, 0),
          max ?? Math.max(high, ...thresholds.map((t) => t.value * 1.1)),
        ],
      },
    },
    series: [
      {},
      ...spec.lines.map((line) => ({
        label: line.label,
        stroke: line.color,
        width: 2,
        value: (/** @type {UPlot} */ _u, /** @type {number | null} */ v) =>
          v === null ? "-" : format(v),
      })),
    ],
    axes: [{}, { values: (_u, values) => values.map((v) => format(v)), size: 60 }],
    hooks: { draw: [(u) => drawOverlays(u, spec.markers, thresholds)] },
  };
  const data = /** @type {import("uplot").AlignedData} */ ([
    [...spec.times],
    ...spec.lines.map((line) => [...line.values]),
  ]);
  Object.assign(figure, { chart: new uPlot(options, data, plot) });
  return figure;
}
