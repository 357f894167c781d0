// A fleet of 10,000 services in the dashboard, in a real headless Chromium: the services table
// shows one page at a time (100 rows, never 10,000), pages forward and back through the real
// gateway's `/v1/services` cursors, and says where it is ("Services 101–200 of 10,000", the total
// from the lean `/v1/snapshot?view=summary`). How long the page takes is the benchmark's business
// (bench/gateway.bench.ts); this checks that paging is what keeps it light.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "@safedeploy/catalog";
import { migrateAudit } from "@safedeploy/audit";
import { createPool } from "@safedeploy/db";
import { CommandFailedError } from "@safedeploy/jetstream";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import { buildGateway, tokenHash, tokenStore } from "@safedeploy/service-gateway";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { chromiumMissing, launchBrowser } from "./browser.js";

const FLEET = 10_000;
const TOKEN = "fleet-viewer-token";
const name = (n: number) => `svc-${String(n).padStart(5, "0")}`;

let dir = "";
let database: TestDatabase | undefined;
let pool: ReturnType<typeof createPool> | undefined;
let app: FastifyInstance | undefined;
let browser: Browser | undefined;
let page: Page;
let pageErrors: string[] = [];

describe.skipIf(chromiumMissing !== undefined)(
  `a 10,000-service fleet in the dashboard${chromiumMissing === undefined ? "" : ` (skipped: ${chromiumMissing})`}`,
  () => {
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "sd-fleet-"));
      const documents = Array.from(
        { length: FLEET },
        (_, n) => `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name(n)}, owner: team-${n % 40} }
spec:
  slos:
    - name: availability
      objective: 99.9
      sli: { errorQuery: "e[{{.window}}]", totalQuery: "t[{{.window}}]" }`,
      );
      await writeFile(join(dir, "fleet.yaml"), documents.join("\n---\n"));
      const loaded = await loadCatalog(dir);
      if (!loaded.ok) throw new Error("the generated fleet catalog does not validate");
      database = await createTestDatabase();
      pool = createPool({ connectionString: database.url, max: 4 });
      await migrateAudit(pool);
      app = await buildGateway({
        pool,
        catalog: loaded.catalog,
        tokens: tokenStore([{ name: "vic", role: "viewer", sha256: tokenHash(TOKEN) }]),
        // Nothing here answers commands: the table reads the read model only.
        sendCommand: () => Promise.reject(new CommandFailedError("unavailable", "no NATS here")),
        clock: { now: () => new Date() },
        events: { pollMs: 200, heartbeatMs: 1_000 },
      });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const { port } = app.server.address() as AddressInfo;
      ({ browser, page, pageErrors } = await launchBrowser({ width: 1400, height: 1000 }));
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.getByLabel("API token").fill(TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await app?.close();
      await pool?.end();
      await database?.drop();
      if (dir !== "") await rm(dir, { recursive: true, force: true });
    });

    const rows = async () => {
      const found = await page.$$('[data-testid="service"]');
      return Promise.all(found.map((row) => row.getAttribute("data-name")));
    };
    const range = () => page.textContent('[data-testid="services-range"]');

    it("shows the first 100 of 10,000 services, not all of them", async () => {
      await page.waitForSelector('[data-testid="services-range"]', { timeout: 60_000 });
      await expect.poll(range, { timeout: 30_000 }).toBe("Services 1–100 of 10,000");
      const first = await rows();
      expect(first).toHaveLength(100);
      expect(first[0]).toBe(name(0));
      expect(first[99]).toBe(name(99));
      expect(await page.isDisabled('[data-testid="services-prev"]')).toBe(true);
      expect(await page.isDisabled('[data-testid="services-next"]')).toBe(false);
    });

    it("pages forward and back through the gateway's cursors", async () => {
      await page.click('[data-testid="services-next"]');
      await expect.poll(range, { timeout: 30_000 }).toBe("Services 101–200 of 10,000");
      expect((await rows())[0]).toBe(name(100));
      await page.click('[data-testid="services-next"]');
      await expect.poll(range, { timeout: 30_000 }).toBe("Services 201–300 of 10,000");
      expect((await rows())[99]).toBe(name(299));
      await page.click('[data-testid="services-prev"]');
      await expect.poll(range, { timeout: 30_000 }).toBe("Services 101–200 of 10,000");
      expect(await rows()).toEqual(Array.from({ length: 100 }, (_, n) => name(100 + n)));
      expect(await page.isDisabled('[data-testid="services-prev"]')).toBe(false);
      // The whole page holds one page of rows however large the fleet.
      expect((await page.$$("tr")).length).toBeLessThan(400);
      // No NATS here: the cards that ask the services (trains) get 503s, as they should.
      expect(pageErrors.filter((error) => !error.includes("status of 503"))).toEqual([]);
    });
  },
);
