// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the real control plane: NATS, PostgreSQL, the audit, policy, incident,
// proposal and git-actuator services, and the gateway serving the page and the API. A fast burn of
// checkout appears on the open page by itself (server-sent events); approving its rollback in the
// page's dialog pushes a revert branch to a bare environment repo, and the page shows the
// proposal executed, its diff, and the incident mitigated. The run saves a screenshot.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { eventSubject } from "@safedeploy/schema";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import {
  budgetEvaluationEvent,
  createTestBus,
  createTestDatabase,
  createTestEnvRepo,
  git,
  testServiceEnv,
} from "@safedeploy/testing";
import { rolloutManifest } from "@safedeploy/demo";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import type { Browser, Page } from "playwright-core";
import { auditService } from "@safedeploy/service-audit";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { incidentService } from "@safedeploy/service-incident";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import { chromiumMissing, launchBrowser } from "./browser.js";

const CATALOG = new URL("../fixtures/catalog/governance", import.meta.url).pathname;
const TOKEN = "dashboard-e2e-approver-token";
const VIEWER_TOKEN = "dashboard-e2e-viewer-token";
const SCREENSHOT_DIR = new URL("../../node_modules/.cache/safedeploy-e2e/", import.meta.url)
  .pathname;

const rollout = (version: string) => rolloutManifest("checkout", `shop/checkout:${version}`);

let root = "";
let remote = "";
let harness: TestBus | undefined;
let database: TestDatabase | undefined;
let browser: Browser | undefined;
let page: Page;
let gatewayUrl = "";
let executedId = "";
let serviceEnv: Record<string, string> = {};
const eventRequests: Record<string, string>[] = [];
const services: ServiceHandle[] = [];
let pageErrors: string[] = [];

describe.skipIf(chromiumMissing !== undefined)(
  `dashboard in Chromium${chromiumMissing === undefined ? "" : ` (skipped: ${chromiumMissing})`}`,
  () => {
    beforeAll(async () => {
      const repo = await createTestEnvRepo("dashboard");
      ({ root, remote } = repo);
      await repo.commit("checkout v1.5.2", {
        "envs/prod/checkout/rollout.yaml": rollout("v1.5.2"),
      });
      await repo.commit("checkout v1.6.0", {
        "envs/prod/checkout/rollout.yaml": rollout("v1.6.0"),
      });

      const tokens = join(root, "tokens.yaml");
      await writeFile(
        tokens,
        `- name: ana\n  role: approver\n  sha256: ${tokenHash(TOKEN)}\n` +
          `- name: vic\n  role: viewer\n  sha256: ${tokenHash(VIEWER_TOKEN)}\n`,
      );

      harness = await createTestBus();
      await provision(harness.bus);
      database = await createTestDatabase();
      const env = (serviceEnv = testServiceEnv(harness, {
        DATABASE_URL: database.url,
        SAFEDEPLOY_CATALOG: CATALOG,
        SAFEDEPLOY_ENV_REPO: remote,
        SAFEDEPLOY_HOME: join(root, "home"),
        SAFEDEPLOY_TOKENS: tokens,
        GATEWAY_HOST: "127.0.0.1",
        GATEWAY_PORT: "0",
      }));
      services.push(
        await startService(auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }), {
          env,
        }),
      );
      for (const definition of [policyService, incidentService, proposalService]) {
        services.push(await startService(definition, { env }));
      }
      services.push(await startService(createGitActuatorService({ env }), { env }));
      // The page lists release trains too: without this service /v1/trains answers 503.
      services.push(await startService(createReleaseTrainService(), { env }));
      services.push(
        await startService(
          createGatewayService({
            events: { pollMs: 100, heartbeatMs: 5_000 },
            onListening: (url) => (gatewayUrl = url),
          }),
          { env },
        ),
      );
      expect(gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      ({ browser, page, pageErrors } = await launchBrowser({ width: 1280, height: 1100 }));
      page.on("request", (request) => {
        if (new URL(request.url()).pathname === "/v1/events") eventRequests.push(request.headers());
      });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      for (const service of services.reverse()) await service.shutdown("test");
      await harness?.cleanup();
      await database?.drop();
      if (root !== "") await rm(root, { recursive: true, force: true });
    });

    it("refuses a wrong token, then signs in and follows the event stream", async () => {
      await page.goto(gatewayUrl);
      await page.getByLabel("API token").fill("not-a-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await expectText(page, '[data-testid="login-error"]', "This token is not valid.");

      await page.getByLabel("API token").fill(TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForSelector('[data-testid="live-status"][data-state="on"]');
      await page.waitForSelector('[data-testid="incidents"]:not([aria-busy])');
      expect(await page.evaluate('sessionStorage.getItem("safedeploy.token")')).toBe(TOKEN);
      // The wrong token's 401 was logged by the browser on purpose; nothing else may be.
      expect(pageErrors.filter((error) => !error.includes("status of 401"))).toEqual([]);
      pageErrors.length = 0;
    });

    it("shows a fast burn's incident and rollback proposal live, approves it in the dialog, and sees the incident mitigated", async () => {
      const checkoutIncident = '[data-testid="incident"][data-service="checkout"]';
      const rollback =
        '[data-testid="proposal"][data-service="checkout"][data-kind="rollback-rollout"]';
      expect(await page.locator(checkoutIncident).count()).toBe(0);

      // No reload from here on: everything arrives through /v1/events.
      await publishEvent(
        harness!.bus,
        budgetEvaluationEvent("checkout", new Date().toISOString(), "fast-burn", {
          burn1h: 16,
          budgetRemaining: 0.4,
        }),
      );
      await page.waitForSelector(`${checkoutIncident}[data-state="detected"]`, { timeout: 30_000 });
      await page.waitForSelector(`${rollback}[data-state="pending"]`, { timeout: 30_000 });
      const service = page.locator('[data-testid="service"][data-name="checkout"]');
      await expectText(
        page,
        '[data-testid="service"][data-name="checkout"] [data-testid="severity"]',
        "fast-burn",
      );
      expect(await service.getByRole("meter").first().getAttribute("aria-valuenow")).toBe("40");
      const proposalId = await page
        .locator(`${rollback}[data-state="pending"]`)
        .getAttribute("data-id");
      expect(proposalId).toMatch(/\S/);
      const card = `[data-testid="proposal"][data-id="${proposalId!}"]`;
      // Before anyone approves, the git actuator's dry run shows the diff approving would push.
      await page.waitForSelector(`${card} [data-testid="preview"]`, { timeout: 30_000 });
      expect(await page.locator(`${card} [data-testid="preview"]`).innerText()).toContain("v1.5.2");

      await page
        .locator(card)
        .getByRole("button", { name: `Approve ${proposalId!}` })
        .click();
      const dialog = page.getByRole("dialog");
      await dialog.waitFor({ state: "visible" });
      expect(await dialog.getByRole("heading").textContent()).toBe(`Approve ${proposalId!}`);
      // An empty reason is refused in the page, before the API.
      await dialog.getByRole("button", { name: "Approve" }).click();
      expect(await dialog.isVisible()).toBe(true);
      await dialog.getByLabel(/Reason/).fill("checkout 5xx after v1.6.0: roll back");
      await dialog.getByRole("button", { name: "Approve" }).click();
      await dialog.waitFor({ state: "hidden" });

      await page.waitForSelector(`${card}[data-state="executed"]`, { timeout: 45_000 });
      await page.waitForSelector(`${checkoutIncident}[data-state="mitigated"]`, {
        timeout: 30_000,
      });
      await expectText(page, `${card} [data-testid="action-branch"]`, `safedeploy/${proposalId!}`);
      const diff = (await page.locator(`${card} [data-testid="diff"]`).textContent()) ?? "";
      expect(diff).toContain('-          image: "shop/checkout:v1.6.0"');
      expect(diff).toContain('+          image: "shop/checkout:v1.5.2"');
      expect(await page.locator(`${card} [data-testid="approvals"]`).textContent()).toContain(
        "ana",
      );
      expect(
        await page.locator(`${checkoutIncident} [data-testid="timeline"] li`).count(),
      ).toBeGreaterThanOrEqual(2);
      expect(await git(remote, ["branch", "--list", `safedeploy/${proposalId!}`])).toContain(
        `safedeploy/${proposalId!}`,
      );

      executedId = proposalId!;
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const screenshot = join(SCREENSHOT_DIR, "dashboard.png");
      await page.screenshot({ path: screenshot, fullPage: true });
      process.stdout.write(`dashboard screenshot: ${screenshot}\n`);
      expect(pageErrors).toEqual([]);
    }, 120_000);

    it("the CLI reads the same state from the real gateway", async () => {
      const cli = async (...argv: string[]) => {
        let stdout = "";
        let stderr = "";
        const code = await runCli({
          argv,
          env: { SAFEDEPLOY_API: gatewayUrl, SAFEDEPLOY_TOKEN: TOKEN },
          stdout: (text) => (stdout += text),
          stderr: (text) => (stderr += text),
        });
        return { code, stdout, stderr };
      };
      const snapshot = await cli("snapshot");
      expect(snapshot).toMatchObject({ code: 0, stderr: "" });
      expect(snapshot.stdout).toMatch(/checkout +availability +\[########-+\] +40% +fast-burn/);
      const gate = await cli("gate", "checkout");
      expect(gate.code).toBe(3);
      expect(gate.stdout).toMatch(/^checkout: promotion BLOCKED/);
      const shown = await cli("proposals", "show", executedId);
      expect(shown).toMatchObject({ code: 0, stderr: "" });
      expect(shown.stdout).toContain(`branch  safedeploy/${executedId}`);
      expect(shown.stdout).toContain('+          image: "shop/checkout:v1.5.2"');
      const again = await cli("proposals", "reject", executedId, "--reason", "too late");
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^safedeploy proposals: 409 /);
      const incidents = await cli("incidents", "list", "--service", "checkout", "--json");
      expect(JSON.parse(incidents.stdout)).toMatchObject({
        items: [{ service: "checkout", state: "mitigated" }],
      });
    });

    it("reconnects to /v1/events with Last-Event-ID after the gateway restarts, and catches up", async () => {
      const port = new URL(gatewayUrl).port;
      const before = eventRequests.length;
      const gateway = services.pop()!;
      await gateway.shutdown("test");
      await page.waitForSelector('[data-testid="live-status"][data-state="off"]');
      // While the gateway is away, checkout recovers.
      await publishEvent(
        harness!.bus,
        budgetEvaluationEvent("checkout", new Date().toISOString(), "normal", {
          budgetRemaining: 0.9,
        }),
      );
      services.push(
        await startService(createGatewayService({ events: { pollMs: 100, heartbeatMs: 5_000 } }), {
          env: { ...serviceEnv, GATEWAY_PORT: port },
        }),
      );
      await page.waitForSelector('[data-testid="live-status"][data-state="on"]', {
        timeout: 30_000,
      });
      await expectText(
        page,
        '[data-testid="service"][data-name="checkout"] [data-testid="severity"]',
        "normal",
      );
      const resumed = eventRequests.slice(before);
      expect(resumed.length).toBeGreaterThan(0);
      expect(resumed.at(-1)?.["last-event-id"]).toMatch(/\S/);
      pageErrors.length = 0; // the refused connections while the gateway was down
    }, 60_000);

    it("a message no service can handle appears under Dead letters, live, with why", async () => {
      const deadLetters = page.locator('[data-testid="deadletters"]');
      expect(await deadLetters.textContent()).toContain("No dead letters.");
      const { bus } = harness!;
      await bus.js.publish(eventSubject(bus.ns, "budget.evaluated", "checkout"), "not json");
      await expectText(page, '[data-testid="dead-letter"]', "payload is not JSON");
      const row = page.locator('[data-testid="dead-letter"]').first();
      expect(await row.textContent()).toMatch(
        /BUDGET \/ \S+_(policy|incident)invalid1payload is not JSON/,
      );
      await page
        .locator('section[aria-labelledby="deadletters-title"]')
        .screenshot({ path: join(SCREENSHOT_DIR, "dashboard-deadletters.png") });
      expect(pageErrors).toEqual([]);
    });

    it("a viewer sees the board, but the dialog shows the API's refusal of an approval", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByLabel("API token").waitFor({ state: "visible" });
      expect(await page.evaluate('sessionStorage.getItem("safedeploy.token")')).toBeNull();
      await page.getByLabel("API token").fill(VIEWER_TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
      const pending = page.locator('[data-testid="proposal"][data-state="pending"]').first();
      await pending.waitFor();
      await pending.getByRole("button", { name: /^Reject / }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByLabel(/Reason/).fill("not mine to decide");
      await dialog.getByRole("button", { name: "Reject" }).click();
      await expectText(page, '[data-testid="decision-error"]', "Your token may not do this");
      expect(await dialog.isVisible()).toBe(true);
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "hidden" });
      expect(await pending.getAttribute("data-state")).toBe("pending");
      // Signing in again reloads the whole board: a minute, as its siblings have, for a loaded
      // full-suite run (it once ran out of the default 30 s in CI, and never alone).
    }, 60_000);
  },
);

/** Waits until the element at `selector` contains `text`. */
async function expectText(on: Page, selector: string, text: string): Promise<void> {
  await on.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 20_000 });
}
