// The dashboard e2e tests' browser: Debian's Chromium driven by playwright-core (which downloads
// no browser), one page that records its errors.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import type { Browser, BrowserType, Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser tests are skipped here, or undefined when Chromium is installed. */
export const chromiumMissing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is not installed; apt-get install chromium`;

// playwright-core is the dashboard package's devDependency: load it from there.
const requireFromDashboard = createRequire(
  new URL("../../packages/dashboard/package.json", import.meta.url),
);

export interface TestBrowser {
  readonly browser: Browser;
  readonly page: Page;
  /** Uncaught page errors and console errors, in order; tests clear it where errors are meant. */
  readonly pageErrors: string[];
}

/** Launches headless Chromium and opens one page of `viewport` that records its errors. */
export async function launchBrowser(viewport: { width: number; height: number }) {
  const { chromium } = requireFromDashboard("playwright-core") as { chromium: BrowserType };
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = await browser.newPage({ viewport });
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
  return { browser, page, pageErrors } satisfies TestBrowser;
}
