import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dashboardAssetsDir } from "@safedeploy/dashboard";

interface SseEvent {
  id: string | null;
  type: string;
  data: string;
}
interface SseModule {
  createSseParser: (onEvent: (event: SseEvent) => void) => {
    push(text: string): void;
    readonly lastEventId: string | null;
    readonly retry: number | null;
  };
}

// sse.js is browser code without types: imported by URL so the compiler does not resolve it.
const sseUrl = new URL("../public/sse.js", import.meta.url).href;
const { createSseParser } = (await import(sseUrl)) as SseModule;

const scriptNames = async () =>
  (await readdir(dashboardAssetsDir)).filter((name) => name.endsWith(".js")).sort();

describe("dashboard assets", () => {
  it("dashboardAssetsDir is the absolute public/ directory with the page's files", async () => {
    expect(dashboardAssetsDir.startsWith("/")).toBe(true);
    expect(dashboardAssetsDir.endsWith("/public/")).toBe(true);
    expect((await readdir(dashboardAssetsDir)).sort()).toEqual([
      "api.js",
      "app.js",
      "charts.js",
      "deadletters.js",
      "decision.js",
      "dom.js",
      "dora.js",
      "freezes.js",
      "guards.js",
      "history-cards.js",
      "incident-page.js",
      "incidents.js",
      "index.html",
      "live.js",
      "proposals.js",
      "services.js",
      "slo-charts.js",
      "sse.js",
      "style.css",
      "trains.js",
    ]);
  });

  it("every script is a type-checked module that imports only its siblings, by bare file name", async () => {
    // The gateway serves bare file names only (no folders), and the browser loads them unbuilt.
    for (const name of await scriptNames()) {
      const text = await readFile(join(dashboardAssetsDir, name), "utf8");
      expect(text.startsWith("// @ts-check\n"), `${name} starts with // @ts-check`).toBe(true);
      for (const [, from] of text.matchAll(/^import [^;]* from "([^"]+)";$/gm)) {
        expect(from, `${name} imports ${from}`).toMatch(/^\.\/[A-Za-z0-9][\w.-]*\.js$/);
      }
    }
  });

  it("loads only its own files: no CDN, no inline script (the gateway's CSP allows 'self' only)", async () => {
    const html = await readFile(join(dashboardAssetsDir, "index.html"), "utf8");
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="style.css" />');
    const scripts = html.match(/<script[^>]*>/g) ?? [];
    expect(scripts).toEqual(['<script type="module" src="app.js">']);
    for (const name of ["index.html", "style.css", ...(await scriptNames())]) {
      const text = await readFile(join(dashboardAssetsDir, name), "utf8");
      for (const outside of ["http://", "https://", '="//', "@import"]) {
        expect(text.includes(outside), `${name} mentions ${outside}`).toBe(false);
      }
    }
    for (const name of await scriptNames()) {
      const text = await readFile(join(dashboardAssetsDir, name), "utf8");
      expect(text, name).not.toMatch(/\binnerHTML\b|window\.prompt|\bprompt\(/);
    }
  });

  it("labels every control and marks the parts the browser test drives", async () => {
    const html = await readFile(join(dashboardAssetsDir, "index.html"), "utf8");
    expect(html).toContain('<label for="token">');
    expect(html).toContain('<label for="decision-reason">');
    for (const id of [
      "token-input",
      "sign-in",
      "services",
      "incidents",
      "trains",
      "proposals",
      "freezes",
      "deadletters",
    ]) {
      expect(html).toContain(`data-testid="${id}"`);
    }
    expect(html).toContain('<dialog id="decision"');
  });
});

describe("sse parser", () => {
  it("parses events split anywhere across chunks, with ids, types, comments and retry", () => {
    const seen: SseEvent[] = [];
    const parser = createSseParser((event) => seen.push(event));
    const stream =
      "retry: 2000\n\n: heartbeat\n\n" +
      'id: c1\nevent: incidents.opened\ndata: {"a":1}\n\n' +
      "id: c2\r\nevent: governance.proposal-created\r\ndata: line one\r\ndata: line two\r\n\r\n" +
      "data: no type\n\n";
    for (let index = 0; index < stream.length; index += 7)
      parser.push(stream.slice(index, index + 7));
    expect(seen).toEqual([
      { id: "c1", type: "incidents.opened", data: '{"a":1}' },
      { id: "c2", type: "governance.proposal-created", data: "line one\nline two" },
      { id: "c2", type: "message", data: "no type" },
    ]);
    expect(parser.lastEventId).toBe("c2");
    expect(parser.retry).toBe(2000);
  });

  it("keeps an incomplete event until its blank line arrives", () => {
    const seen: SseEvent[] = [];
    const parser = createSseParser((event) => seen.push(event));
    parser.push("id: x\nevent: budget.evaluated\ndata: {}\n");
    expect(seen).toEqual([]);
    parser.push("\n");
    expect(seen).toEqual([{ id: "x", type: "budget.evaluated", data: "{}" }]);
  });
});
