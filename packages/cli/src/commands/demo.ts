import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { createDemoEnvRepo, demoCatalog, DEMO_SERVICE, startDemoApp } from "@safedeploy/demo";
import type { DemoApp } from "@safedeploy/demo";
import { EXIT } from "../io.js";
import type { Command } from "../io.js";
import { startPrometheus } from "../stack/servers.js";
import type { ServerProcess } from "../stack/servers.js";
import { onInterrupt } from "../stack/signals.js";
import { startStack } from "../stack/stack.js";
import type { Stack } from "../stack/stack.js";
import { sleep, StackError } from "../stack/tools.js";
import { runUntilInterrupted } from "./up.js";

const exec = promisify(execFile);

const USAGE = `Usage: safedeploy demo [--keep-running] [--verbose] [--no-color]

Runs "safedeploy up" with a demo: the checkout app exporting http_requests_total, a Prometheus
scraping it every second, a local environment repo (bare remote with an Argo Rollouts manifest
history) and a catalog with short windows, all under $SAFEDEPLOY_HOME/demo (recreated each run).
Then it walks through: healthy traffic, a bad deploy of checkout v2, the error-budget burn, the
incident, the rollback proposal, its approval through the API, and the rollback branch and diff.

Options:
  --keep-running  stay up after the walkthrough (Ctrl-C to stop)
  --verbose       show the services' info logs (default: warnings and errors)

Exit 0 when every step happened; 1 naming the step that did not, within its timeout.`;

class StepFailed extends Error {
  override readonly name = "StepFailed";
}

/** The first string value of `key` anywhere in `value` (the API's shapes nest budget per SLO). */
export function findField(value: unknown, key: string): unknown {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findField(item, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (key in record && record[key] !== null && typeof record[key] !== "object") return record[key];
  for (const item of Object.values(record)) {
    const found = findField(item, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

interface Item {
  readonly id: string;
  readonly state: string;
  readonly kind?: string;
  readonly severity?: string;
  readonly class?: string;
  readonly action?: {
    branch?: string;
    commit?: string;
    prUrl?: string | null;
    diff?: string;
  } | null;
}

export const demo: Command = {
  name: "demo",
  summary: "up + a demo app, Prometheus and env repo; walks a bad deploy to its rollback branch",
  usage: USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        "keep-running": { type: "boolean" },
        verbose: { type: "boolean" },
        "no-color": { type: "boolean" },
      },
      allowPositionals: false,
    });
    const color =
      values["no-color"] !== true && io.env.NO_COLOR === undefined && process.stdout.isTTY;
    const started = Date.now();
    const stamp = () => `+${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
    const bold = (text: string) => (color ? `\u001b[1m${text}\u001b[0m` : text);
    const say = (text: string) => {
      io.stdout(`${bold(`[demo ${stamp()}]`)} ${text}\n`);
    };
    const step = (text: string) => {
      io.stdout(`\n${bold(`[demo ${stamp()}] ▶ ${text}`)}\n`);
    };
    const cwd = io.cwd ?? process.cwd();
    const home = resolve(cwd, io.env.SAFEDEPLOY_HOME ?? ".safedeploy");
    const dir = join(home, "demo");
    let app: DemoApp | undefined;
    let prometheus: ServerProcess | undefined;
    let stack: Stack | undefined;
    const teardown = async () => {
      await stack?.stop();
      await prometheus?.stop();
      await app?.close();
    };
    const removeHandlers = onInterrupt(
      (signal) => {
        io.stderr(`\n[demo] ${signal}: stopping everything (Ctrl-C again to kill)\n`);
        void teardown().then(() => process.exit(130));
      },
      () => {
        stack?.kill();
        process.exit(130);
      },
    );
    try {
      step("preparing the demo");
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      say(`fresh state in ${dir}`);
      app = await startDemoApp({ service: DEMO_SERVICE, rps: 50, version: "v1" });
      say(
        `demo app ${DEMO_SERVICE} v1 on ${app.url} (50 req/s, /metrics, /healthz; POST /admin/version, POST /admin/dependency)`,
      );
      prometheus = await startPrometheus(join(dir, "prometheus"), [app.target], io.env);
      say(`Prometheus on ${prometheus.url}, scraping the app every 1s`);
      const repo = await createDemoEnvRepo(join(dir, "envrepo"));
      say(`environment repo ${repo.remote} (Argo Rollouts manifest ${repo.rolloutPath} at v1)`);
      const catalog = join(dir, "catalog.yaml");
      await writeFile(catalog, demoCatalog());
      const token = `sd_demo_${randomBytes(18).toString("hex")}`;
      const tokens = join(dir, "tokens.yaml");
      const sha = createHash("sha256").update(token).digest("hex");
      await writeFile(tokens, `- name: demo-approver\n  role: approver\n  sha256: ${sha}\n`, {
        mode: 0o600,
      });
      say(`API token (role approver) written to ${tokens} as its sha256:\n    ${token}`);

      step("starting the control plane (safedeploy up)");
      stack = await startStack({
        env: {
          ...io.env,
          NATS_URL: io.env.NATS_URL,
          PROMETHEUS_URL: prometheus.url,
          SAFEDEPLOY_CATALOG: catalog,
          SAFEDEPLOY_HOME: dir,
          SAFEDEPLOY_ENV_REPO: repo.remote,
          SAFEDEPLOY_ENV_BRANCH: "main",
          SAFEDEPLOY_FORGE: "git",
          SAFEDEPLOY_TOKENS: tokens,
          SAFEDEPLOY_POLL_INTERVAL: "1s",
          LOG_LEVEL: io.env.LOG_LEVEL ?? (values.verbose === true ? "info" : "warn"),
        },
        cwd,
        say,
        write: io.stdout,
        color,
      });
      if (stack.notReady.length > 0) {
        throw new StepFailed(
          `services not ready within 120 s: ${stack.notReady.join(", ")} (see their logs)`,
        );
      }
      const api = stack.gatewayUrl;
      say(`control plane ready; dashboard ${api}/  (token above)`);
      const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
        const response = await fetch(`${api}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(5_000),
        });
        const text = await response.text();
        if (!response.ok)
          throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
        return JSON.parse(text) as unknown;
      };
      const waitFor = async <T>(
        what: string,
        timeoutMs: number,
        probe: () => Promise<T | undefined>,
      ): Promise<T> => {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        for (;;) {
          try {
            const found = await probe();
            if (found !== undefined) return found;
          } catch (error) {
            last = error instanceof Error ? error.message : String(error);
          }
          if (Date.now() > deadline) {
            throw new StepFailed(
              `${what} did not happen within ${timeoutMs / 1000} s${last === "" ? "" : ` (last error: ${last})`}`,
            );
          }
          await sleep(1_000);
        }
      };
      const service = () => call("GET", `/v1/services/${DEMO_SERVICE}`);
      const items = async (path: string) => ((await call("GET", path)) as { items: Item[] }).items;

      step(`healthy traffic: ${DEMO_SERVICE} v1 serves 100% 200s`);
      await waitFor(
        `${DEMO_SERVICE} evaluated as normal (collector → budget)`,
        90_000,
        async () => {
          const severity = findField(await service(), "severity");
          return severity === "normal" ? severity : undefined;
        },
      );
      say(`${DEMO_SERVICE} is normal; letting 20 s of healthy history build up`);
      await sleep(20_000);

      step(`deploying ${DEMO_SERVICE} v2 (bad: 80% of requests fail with 500)`);
      const deployed = await repo.deploy("v2", `Deploy ${DEMO_SERVICE} v2`);
      app.setVersion("v2");
      say(
        `commit ${deployed.slice(0, 10)} on main touches ${repo.rolloutPath}; the app now runs v2`,
      );

      step("watching the error budget burn");
      const burning = await waitFor(
        `${DEMO_SERVICE} turning fast-burn or exhausted`,
        90_000,
        async () => {
          const body = await service();
          const severity = findField(body, "severity");
          return severity === "fast-burn" || severity === "exhausted" ? body : undefined;
        },
      );
      const remaining = findField(burning, "budgetRemaining");
      say(
        `${DEMO_SERVICE} is ${String(findField(burning, "severity"))}` +
          (typeof remaining === "number"
            ? `, budget remaining ${(remaining * 100).toFixed(1)}%`
            : ""),
      );

      step("the incident");
      const incident = await waitFor("an incident for checkout", 60_000, async () =>
        (await items(`/v1/incidents?service=${DEMO_SERVICE}`)).find((i) => i.state !== "resolved"),
      );
      say(
        `${incident.id}: ${incident.state}, severity ${incident.severity ?? "?"}, class ${incident.class ?? "?"}`,
      );

      step("the rollback proposal");
      const proposal = await waitFor("a rollback-rollout proposal", 60_000, async () =>
        (await items(`/v1/proposals?service=${DEMO_SERVICE}`)).find(
          (p) => p.kind === "rollback-rollout" && p.state === "pending",
        ),
      );
      say(`${proposal.id}: ${proposal.kind}, ${proposal.state}`);

      step(`approving ${proposal.id} through the API as demo-approver`);
      await call("POST", `/v1/proposals/${proposal.id}/approve`, {
        reason: "safedeploy demo: v2 is failing, roll it back",
      });
      say(`POST /v1/proposals/${proposal.id}/approve → approved`);

      step("waiting for the git actuator");
      const executed = await waitFor("the rollback branch (proposal action)", 90_000, async () => {
        const current = (await call("GET", `/v1/proposals/${proposal.id}`)) as Item;
        return current.action?.branch !== undefined ? current : undefined;
      });
      const branch = executed.action?.branch ?? "";
      say(
        `branch ${branch} pushed to ${repo.remote}${executed.action?.commit === undefined ? "" : ` (commit ${executed.action.commit.slice(0, 10)})`}`,
      );
      let diff = executed.action?.diff ?? "";
      if (diff === "") {
        diff = (await exec("git", ["show", "--stat", "--patch", branch], { cwd: repo.remote }))
          .stdout;
      }
      io.stdout(`${diff.trimEnd()}\n`);

      step(`recovering: ${DEMO_SERVICE} runs v1 again (as Argo CD would after merging ${branch})`);
      app.setVersion("v1");
      try {
        const mitigated = await waitFor("the incident mitigated", 60_000, async () => {
          const current = (await call("GET", `/v1/incidents/${incident.id}`)) as Item;
          return current.state === "detected" || current.state === "investigating"
            ? undefined
            : current;
        });
        say(`${incident.id} is ${mitigated.state}`);
      } catch (error) {
        say(`note: ${(error as Error).message}; the walkthrough is complete anyway`);
      }

      step(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      say(`bad deploy → burn → ${incident.id} → ${proposal.id} approved → branch ${branch}`);
      if (values["keep-running"] === true) {
        say(`still running (--keep-running): dashboard ${api}/, token above; Ctrl-C to stop`);
        removeHandlers();
        await runUntilInterrupted(stack, io);
        stack = undefined;
      }
      removeHandlers();
      await teardown();
      return EXIT.ok;
    } catch (error) {
      removeHandlers();
      if (error instanceof StackError) {
        io.stderr(`safedeploy demo: ${error.message}\n`);
        await teardown();
        return error.exitCode;
      }
      if (error instanceof StepFailed) {
        io.stderr(`\nsafedeploy demo: FAILED at ${stamp()}: ${error.message}\n`);
        await teardown();
        return EXIT.negative;
      }
      await teardown();
      throw error;
    }
  },
};
