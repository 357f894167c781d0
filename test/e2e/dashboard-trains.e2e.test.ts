// The dashboard's release trains in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the real gateway and the real audit, release-train, policy, proposal
// and git-actuator services, with a real environment repo: a two-step train started through the
// API appears on the open page by itself (server-sent events), running with a guard countdown,
// then completed with both steps checked and the commits the actuator pushed; its follow-up is
// scheduled, then passed; a dry run is listed above it, marked so. Nothing is reloaded. The run
// saves a screenshot.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import {
  deploymentManifest,
  createTestBus,
  createTestDatabase,
  createTestEnvRepo,
  git,
  policyYaml,
  serviceYaml,
  testServiceEnv,
  yamlDocuments,
} from "@safedeploy/testing";
import type { TestBus, TestDatabase } from "@safedeploy/testing";
import type { Browser, Page } from "playwright-core";
import { auditService } from "@safedeploy/service-audit";
import { createGatewayService, tokenHash } from "@safedeploy/service-gateway";
import { createGitActuatorService } from "@safedeploy/service-git-actuator";
import { policyService } from "@safedeploy/service-policy";
import { proposalService } from "@safedeploy/service-proposal";
import { createReleaseTrainService } from "@safedeploy/service-release-train";
import { chromiumMissing, launchBrowser } from "./browser.js";

const TOKEN = "dashboard-trains-approver-token";
const SCREENSHOT_DIR = new URL("../../node_modules/.cache/safedeploy-e2e/", import.meta.url)
  .pathname;
const SERVICES = ["search", "basket"] as const;

const catalog = yamlDocuments([
  policyYaml("  requireCanary: false\n  noData: allow\n"),
  ...SERVICES.map((name) => serviceYaml(name, { sli: "rate" })),
]);

/** The train the test starts: two steps with short guard windows, one follow-up. */
const trainDocument = (followUps: string[]) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "ReleaseTrain",
  metadata: { name: "web-train" },
  spec: {
    steps: SERVICES.map((service) => ({
      service,
      image: `shop/${service}:v2`,
      guardWindow: "3s",
    })),
    followUps,
  },
});

let root = "";
let remote = "";
let harness: TestBus | undefined;
let database: TestDatabase | undefined;
let browser: Browser | undefined;
let page: Page;
let gatewayUrl = "";
const services: ServiceHandle[] = [];
let pageErrors: string[] = [];
let navigations = 0;

async function startTrain(dryRun: boolean, followUps: string[]): Promise<string> {
  const response = await fetch(`${gatewayUrl}/v1/trains`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ train: trainDocument(followUps), dryRun }),
  });
  const body = (await response.json()) as { id?: string };
  expect(response.status, JSON.stringify(body)).toBe(201);
  expect(body.id).toMatch(/^TRN-/);
  return body.id!;
}

describe.skipIf(chromiumMissing !== undefined)(
  `dashboard release trains in Chromium${chromiumMissing === undefined ? "" : ` (skipped: ${chromiumMissing})`}`,
  () => {
    beforeAll(async () => {
      const repo = await createTestEnvRepo("dashboard-trains");
      ({ root, remote } = repo);
      await repo.commit(
        "prod at v1",
        Object.fromEntries(
          SERVICES.map((s) => [`envs/prod/${s}/deployment.yaml`, deploymentManifest(s, "v1")]),
        ),
      );
      await writeFile(join(root, "catalog.yaml"), catalog);
      await writeFile(
        join(root, "tokens.yaml"),
        `- { name: rel, role: approver, sha256: ${tokenHash(TOKEN)} }\n`,
      );

      harness = await createTestBus();
      await provision(harness.bus);
      database = await createTestDatabase();
      const env = testServiceEnv(harness, {
        DATABASE_URL: database.url,
        SAFEDEPLOY_CATALOG: join(root, "catalog.yaml"),
        SAFEDEPLOY_ENV_REPO: remote,
        SAFEDEPLOY_HOME: join(root, "home"),
        SAFEDEPLOY_TOKENS: join(root, "tokens.yaml"),
        GATEWAY_HOST: "127.0.0.1",
        GATEWAY_PORT: "0",
      });
      // The audit service fills the log the gateway's /v1/events reads.
      for (const definition of [
        auditService({ maxBatch: 100, lingerMs: 10, backoffMs: [100] }),
        policyService,
        proposalService,
        createGitActuatorService({ env }),
        createReleaseTrainService({ tickMs: 200, leaseMs: 5_000 }),
        createGatewayService({
          events: { pollMs: 100, heartbeatMs: 5_000 },
          onListening: (url) => (gatewayUrl = url),
        }),
      ]) {
        services.push(await startService(definition, { env }));
      }
      expect(gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      ({ browser, page, pageErrors } = await launchBrowser({ width: 1280, height: 1000 }));
      page.on("framenavigated", (frame) => {
        if (frame === page.mainFrame()) navigations += 1;
      });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      for (const service of services.reverse()) await service.shutdown("test");
      await harness?.cleanup();
      await database?.drop();
      if (root !== "") await rm(root, { recursive: true, force: true });
    });

    it("signs in to an empty list of trains and follows the event stream", async () => {
      await page.goto(gatewayUrl);
      await page.getByLabel("API token").fill(TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForSelector('[data-testid="live-status"][data-state="on"]');
      await page.waitForSelector('[data-testid="trains"]:not([aria-busy])');
      expect(await page.getByRole("region", { name: "Release trains" }).textContent()).toContain(
        "No release trains yet.",
      );
      expect(pageErrors).toEqual([]);
    });

    it("shows a train started through the API running, guarding, then completed with both steps checked and their commits, live", async () => {
      const started = Date.now();
      const before = navigations;
      const id = await startTrain(false, ["4s"]);
      const card = `[data-testid="train"][data-id="${id}"]`;
      const step = (index: number) => `${card} [data-testid="train-step"][data-index="${index}"]`;

      // Arrives by itself (governance.train-started, then train-step events).
      await page.waitForSelector(`${card}[data-state="running"]`, { timeout: 20_000 });
      const train = page.getByRole("article", { name: `Release train web-train (${id})` });
      expect(await train.getByTestId("train-name").textContent()).toBe("web-train");
      expect(await train.getByTestId("train-id").textContent()).toBe(id);
      expect(await train.getByTestId("train-state").textContent()).toBe("running");
      expect(await train.getByTestId("train-dry-run").count()).toBe(0);
      const steps = train.getByRole("list", { name: "Steps of web-train" }).getByRole("listitem");
      expect(await steps.getByTestId("step-service").allTextContents()).toEqual([...SERVICES]);
      expect(await steps.getByTestId("step-change").allTextContents()).toEqual(
        SERVICES.map((service) => expect.stringContaining(`shop/${service}:v2`) as string),
      );

      // Step 1 in its guard window: the countdown is shown and ticks.
      await page.waitForSelector(`${step(0)}[data-phase="guarding"] [data-testid="step-guard"]`, {
        timeout: 20_000,
      });
      expect(await page.locator(`${step(0)} [data-testid="step-guard"]`).textContent()).toMatch(
        /^guard window (ends in \ds|over, checking…)$/,
      );
      expect(await page.locator(step(1)).getAttribute("data-phase")).toBe("pending");

      await page.waitForSelector(`${card}[data-state="completed"]`, { timeout: 60_000 });
      const completedAfter = Date.now() - started;
      for (const index of [0, 1]) {
        const item = page.locator(step(index));
        expect(await item.getAttribute("data-phase")).toBe("checked");
        expect(await item.getAttribute("data-outcome")).toBe("ok");
        expect(await item.getByTestId("step-outcome").textContent()).toBe("ok");
        expect(await item.getByTestId("step-guard").count()).toBe(0);
        // The commit the actuator pushed to the step's branch, shown short.
        const pushed = await git(remote, ["rev-parse", `safedeploy/${id}-s${index + 1}`]);
        expect(await item.getByTestId("step-commit").getAttribute("data-commit")).toBe(pushed);
        expect(await item.getByTestId("step-commit").textContent()).toBe(pushed.slice(0, 7));
      }
      expect(await train.getByTestId("train-times").textContent()).toMatch(
        /^started .+, finished .+$/,
      );
      expect(await train.getByTestId("train-reason").textContent()).toContain("promoted");
      expect(await train.getByTestId("train-revert").count()).toBe(0);
      expect(await train.getByTestId("train-triage").count()).toBe(0);

      // The follow-up, scheduled at the end, then passed (governance.follow-up).
      const followUp = `${card} [data-testid="follow-up"][data-after="4s"]`;
      await page.waitForSelector(followUp, { timeout: 10_000 });
      await page.waitForSelector(`${followUp}[data-phase="passed"]`, { timeout: 30_000 });

      expect(navigations).toBe(before);
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const screenshot = join(SCREENSHOT_DIR, "dashboard-trains.png");
      await train.scrollIntoViewIfNeeded();
      await page.screenshot({ path: screenshot, fullPage: true });
      process.stdout.write(
        `dashboard trains screenshot: ${screenshot} (train completed on the page ${completedAfter} ms after it was started)\n`,
      );
      expect(pageErrors).toEqual([]);
    }, 120_000);

    it("lists a dry run above it, newest first, marked as a dry run", async () => {
      const id = await startTrain(true, []);
      const card = `[data-testid="train"][data-id="${id}"]`;
      await page.waitForSelector(`${card}[data-state="completed"]`, { timeout: 60_000 });
      expect(await page.locator(card).getAttribute("data-dry-run")).toBe("true");
      expect(await page.locator(`${card} [data-testid="train-dry-run"]`).textContent()).toBe(
        "dry run",
      );
      const cards = await page.locator('[data-testid="train"]').all();
      const ids = await Promise.all(cards.map((found) => found.getAttribute("data-id")));
      expect(ids).toHaveLength(2);
      expect(ids[0]).toBe(id);
      expect(pageErrors).toEqual([]);
    }, 90_000);

    it("shows a halted train's revert proposal as a link, a needs-triage train's evidence, and a failed follow-up", async () => {
      // Halts need a regression (Prometheus): here /v1/trains answers with views of them; the rest
      // of the page is the real API.
      const step = (index: number, service: string, outcome: "ok" | "fatal") => ({
        index,
        service,
        change: `image shop/${service}:v3 → envs/prod/${service}`,
        phase: "checked",
        proposalId: `TRN-X-s${index + 1}`,
        branch: `safedeploy/TRN-X-s${index + 1}`,
        commit: `${index + 1}`.repeat(40),
        deployedAt: "2026-01-01T10:00:00.000Z",
        guardUntil: null,
        outcome,
        diff: null,
        evidence: [{ type: "health", name: "error-rate", outcome, value: 0.2 }],
      });
      const base = {
        name: "web-train",
        dryRun: false,
        actor: "rel",
        updatedAt: "2026-01-01T10:05:00.000Z",
        manifest: {},
        revert: null,
        triage: null,
      };
      const items = [
        {
          ...base,
          id: "TRN-HALTED",
          state: "halted",
          createdAt: "2026-01-01T10:00:00.000Z",
          reason: "step 2 (basket) failed its checks",
          steps: [step(0, "search", "ok"), step(1, "basket", "fatal")],
          followUps: [],
          revert: { proposalId: "PRP-REVERT-1", service: "basket", step: 1 },
        },
        {
          ...base,
          id: "TRN-TRIAGE",
          state: "needs-triage",
          createdAt: "2026-01-01T09:00:00.000Z",
          reason: "follow-up after 1h failed; cannot tell step 1 from step 2",
          steps: [step(0, "search", "ok"), step(1, "basket", "ok")],
          followUps: [
            {
              after: "1h",
              dueAt: "2026-01-01T10:00:00.000Z",
              phase: "failed",
              attributedStep: null,
              at: "2026-01-01T10:00:01.000Z",
            },
            {
              after: "4h",
              dueAt: "2026-01-01T13:00:00.000Z",
              phase: "failed",
              attributedStep: 1,
              at: "2026-01-01T13:00:01.000Z",
            },
          ],
          triage: { steps: [0, 1], evidence: ["search error rate up", "basket error rate up"] },
        },
      ];
      const other = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      other.on("pageerror", (error) => errors.push(error.message));
      await other.route(
        (url) => url.pathname === "/v1/trains",
        (route) =>
          route.fulfill({ status: 200, json: { items: [items[1], items[0]], next: null } }),
      );
      try {
        await other.goto(gatewayUrl);
        await other.getByLabel("API token").fill(TOKEN);
        await other.getByRole("button", { name: "Sign in" }).click();
        const halted = other.getByRole("article", { name: "Release train web-train (TRN-HALTED)" });
        await halted.waitFor();
        // Newest first, whatever order the list came in.
        const cards = await other.locator('[data-testid="train"]').all();
        expect(await Promise.all(cards.map((card) => card.getAttribute("data-id")))).toEqual([
          "TRN-HALTED",
          "TRN-TRIAGE",
        ]);
        expect(await halted.getAttribute("data-state")).toBe("halted");
        const link = halted.getByRole("link", { name: "PRP-REVERT-1" });
        expect(await link.getAttribute("href")).toBe("#proposal-PRP-REVERT-1");
        expect(await halted.getByTestId("train-revert").textContent()).toContain(
          "Revert of step 2 (basket) proposed",
        );
        const failing = halted.locator('[data-testid="train-step"][data-index="1"]');
        expect(await failing.getAttribute("data-outcome")).toBe("fatal");
        expect(await failing.getByTestId("step-commit").textContent()).toBe("2222222");
        expect(await halted.getByTestId("train-triage").count()).toBe(0);

        const triage = other.getByRole("article", { name: "Release train web-train (TRN-TRIAGE)" });
        expect(await triage.getByTestId("train-state").textContent()).toBe("needs-triage");
        expect(
          await triage
            .getByRole("list", { name: "Triage evidence" })
            .getByRole("listitem")
            .allTextContents(),
        ).toEqual(["search error rate up", "basket error rate up"]);
        expect(await triage.getByTestId("train-triage").textContent()).toContain(
          "could be step 1 or 2",
        );
        expect(await triage.getByTestId("train-revert").count()).toBe(0);
        const followUps = triage.getByRole("list", { name: "Follow-ups of web-train" });
        expect(await followUps.getByTestId("follow-up-phase").allTextContents()).toEqual([
          "failed",
          "failed",
        ]);
        expect(await followUps.getByTestId("follow-up-attributed").allTextContents()).toEqual([
          "attributed to step 2 (basket)",
        ]);
        expect(errors).toEqual([]);
      } finally {
        await other.close();
      }
    });
  },
);
