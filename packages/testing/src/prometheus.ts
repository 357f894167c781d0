import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable, freePort, startProcess, waitUntil } from "./process.js";
import type { ManagedProcess } from "./process.js";

export interface ScrapeTarget {
  readonly jobName: string;
  /** `host:port` of each exporter. */
  readonly targets: readonly string[];
  readonly interval?: string;
  readonly metricsPath?: string;
}

export interface PrivatePrometheusOptions {
  readonly scrape: readonly ScrapeTarget[];
  /** Prometheus rule file contents (YAML), e.g. generated recording rules. */
  readonly rules?: string;
  /** How often rules are evaluated; tests use 1s. */
  readonly evaluationInterval?: string;
}

/** A real Prometheus server on a free port with its own config and TSDB, for one test file. */
export interface PrivatePrometheus {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts again on the same port, keeping its data. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

function yamlList(values: readonly string[]): string {
  return `[${values.map((value) => JSON.stringify(value)).join(", ")}]`;
}

/** The prometheus.yml for the given scrape targets (JSON strings are valid YAML scalars). */
export function prometheusConfig(options: PrivatePrometheusOptions, ruleFile?: string): string {
  const lines = [
    "global:",
    `  scrape_interval: ${options.scrape[0]?.interval ?? "1s"}`,
    `  evaluation_interval: ${options.evaluationInterval ?? "1s"}`,
  ];
  if (ruleFile !== undefined) lines.push("rule_files:", `  - ${JSON.stringify(ruleFile)}`);
  lines.push("scrape_configs:");
  for (const target of options.scrape) {
    lines.push(
      `  - job_name: ${JSON.stringify(target.jobName)}`,
      `    scrape_interval: ${target.interval ?? "1s"}`,
      `    metrics_path: ${JSON.stringify(target.metricsPath ?? "/metrics")}`,
      "    static_configs:",
      `      - targets: ${yamlList(target.targets)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Starts the machine's `prometheus` binary (Debian package `prometheus`, or `PROMETHEUS_BIN`).
 */
export async function startPrometheus(
  options: PrivatePrometheusOptions,
): Promise<PrivatePrometheus> {
  const binary = process.env.PROMETHEUS_BIN ?? findExecutable("prometheus");
  if (binary === undefined) {
    throw new Error(
      "prometheus not found on PATH: apt-get install prometheus, or set PROMETHEUS_BIN",
    );
  }
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), "sd-prom-"));
  let ruleFile: string | undefined;
  if (options.rules !== undefined) {
    ruleFile = join(root, "rules.yml");
    writeFileSync(ruleFile, options.rules);
  }
  const configFile = join(root, "prometheus.yml");
  writeFileSync(configFile, prometheusConfig(options, ruleFile));
  const url = `http://127.0.0.1:${port}`;
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(root, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--storage.tsdb.retention.time=1d",
    "--web.enable-lifecycle",
  ];
  let current: ManagedProcess | undefined;
  const start = async (): Promise<void> => {
    const started = startProcess(binary, args, join(root, "prometheus.log"));
    current = started;
    await waitUntil(
      async () => {
        if (started.child.exitCode !== null) throw new Error("exited");
        const response = await fetch(`${url}/-/ready`);
        return response.ok;
      },
      30_000,
      () => `prometheus on port ${port} did not become ready:\n${started.logTail()}`,
    );
  };
  const stop = async (): Promise<void> => {
    await current?.stop();
    current = undefined;
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    dispose: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
