// Core evaluations per second: evaluateSlo over the default six windows and three burn rules.
import { writeFileSync } from "node:fs";
import { DEFAULT_BURN_RULES, evaluateSlo, requiredWindows } from "@safedeploy/core";
import type { SliWindow } from "@safedeploy/schema";

const target = { objective: 99.9, window: "30d", minEvents: 100, safetyMargin: 0.25 };
const windows = requiredWindows(target, DEFAULT_BURN_RULES);
const inputs: SliWindow[][] = Array.from({ length: 1_000 }, (_, i) =>
  windows.map((window) => ({
    window,
    errorQuery: "e",
    totalQuery: "t",
    errors: (i % 50) / 100,
    total: 10 + (i % 7),
    status: "ok" as const,
  })),
);

function run(durationMs: number): number {
  let evaluations = 0;
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline) {
    for (const input of inputs) evaluateSlo(target, input);
    evaluations += inputs.length;
  }
  return (evaluations * 1_000) / durationMs;
}

run(500); // warm-up
const samples = [run(1_000), run(1_000), run(1_000)].sort((a, b) => a - b);
const result = {
  benchmark: "core.evaluateSlo",
  windows: windows.length,
  rules: DEFAULT_BURN_RULES.length,
  evaluationsPerSecond: Math.round(samples[1] ?? 0),
  runs: samples.map(Math.round),
  node: process.version,
  at: new Date().toISOString(),
};
writeFileSync(
  new URL("results/core.json", import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
process.stdout.write(
  `core: ${result.evaluationsPerSecond.toLocaleString("en")} evaluations/s (median of 3)\n`,
);
