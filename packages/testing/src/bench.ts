import { writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

/** The 1, 5 and 15 minute load averages, to two decimals. */
export function loadAverage(): number[] {
  return loadavg().map((load) => Number(load.toFixed(2)));
}

/** What a benchmark ran on: the numbers mean little without it (the machine is shared). */
export function benchMachine(loadBefore: readonly number[]) {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadBefore: [...loadBefore],
    loadAfter: loadAverage(),
  };
}

/** Writes a benchmark's result as JSON to `file` (e.g. `bench/results/<name>.json`). */
export function writeBenchResult(file: URL, result: unknown): void {
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

/** A target's line in a benchmark's output: `PASS what: detail` or `MISS what: detail`. */
export function targetLine(pass: boolean, what: string, detail: string): string {
  return `${pass ? "PASS" : "MISS"} ${what}: ${detail}`;
}
