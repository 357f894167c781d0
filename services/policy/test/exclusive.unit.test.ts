// Runs for one service never overlap within a process (a verdict read its freezes before a
// concurrent evaluation wrote one, and was published for a later moment without it); runs for
// different services still go side by side.
import { describe, expect, it } from "vitest";
import type { PolicyDeps } from "../src/deps.js";
import { exclusively } from "../src/handlers/judge.js";

const deps = {} as PolicyDeps;
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("exclusively", () => {
  it("runs one service's work one at a time, in order, even when a run fails", async () => {
    const log: string[] = [];
    const run = (name: string, fail = false) =>
      exclusively(deps, "checkout", async () => {
        log.push(`${name} in`);
        await pause();
        log.push(`${name} out`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([run("clock"), run("evaluation", true), run("gate")]);
    expect(log).toEqual([
      "clock in",
      "clock out",
      "evaluation in",
      "evaluation out",
      "gate in",
      "gate out",
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("lets different services run side by side", async () => {
    const log: string[] = [];
    const run = (service: string) =>
      exclusively(deps, service, async () => {
        log.push(`${service} in`);
        await pause();
        log.push(`${service} out`);
      });
    await Promise.all([run("checkout"), run("search")]);
    expect(log.slice(0, 2)).toEqual(["checkout in", "search in"]);
  });
});
