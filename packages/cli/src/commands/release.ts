import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { formatCatalogError, loadCatalog, parseCatalogText } from "@safedeploy/catalog";
import type { CatalogError } from "@safedeploy/catalog";
import { planTrain } from "@safedeploy/core";
import type { PlanError, PlanService, TrainPlan } from "@safedeploy/core";
import { TrainView } from "@safedeploy/schema";
import { z } from "zod";
import type { HealthCheck, Hook, ReleaseTrainDocument } from "@safedeploy/schema";
import { apiPath, listOf, printJson, withApi } from "../api.js";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

/** One `release` subcommand: its synopsis line and what it runs with the arguments after its name. */
interface ReleaseSubcommand {
  readonly synopsis: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** What a check expects of the answer, e.g. `status 200, $.version = "v2"`. */
function describeExpectations(expect: HealthCheck["expect"]): string {
  const parts = [`status ${expect.status}`];
  for (const [path, value] of Object.entries(expect.json ?? {})) {
    parts.push(`${path} = ${JSON.stringify(value)}`);
  }
  if (expect.bodyContains !== undefined)
    parts.push(`body contains ${JSON.stringify(expect.bodyContains)}`);
  if (expect.maxLatency !== undefined) parts.push(`within ${expect.maxLatency}`);
  return parts.join(", ");
}

function describeCheck(check: HealthCheck): string {
  return `GET ${check.http}: ${describeExpectations(check.expect)} (${check.severity})`;
}

function describeStrategy(step: TrainPlan["steps"][number]): string {
  const { strategy } = step;
  switch (strategy.kind) {
    case "canary":
      return `canary ${strategy.stages.map((stage) => `${stage.weight}%`).join(" → ")}, bake ${strategy.stages[0]?.bakeTime ?? "0s"} each`;
    case "blue_green":
      return `blue_green, one cutover${strategy.cutoverHook === null ? "" : " (cutover hook)"}`;
    case "rolling":
      return `rolling, one change (maxUnavailable ${strategy.maxUnavailable})`;
  }
}

function describeHook(hook: Hook): string {
  return "http" in hook
    ? `${hook.http.method} ${hook.http.url}`
    : `manifest patch ${Object.keys(hook.manifest.patch).join(", ")} of ${hook.manifest.path} (committed by the git actuator)`;
}

/** A manifest hook's record in a step's evidence, when it has a diff. */
const ManifestHookEvidence = z.object({
  type: z.literal("hook"),
  hook: z.string(),
  kind: z.literal("manifest"),
  change: z.object({ diff: z.string() }),
});

/** The diffs of a step's manifest hooks (in a dry run: computed, not pushed). */
function manifestHookDiffs(step: TrainView["steps"][number]): { hook: string; diff: string }[] {
  return step.evidence.flatMap((item) => {
    const parsed = ManifestHookEvidence.safeParse(item);
    return parsed.success ? [{ hook: parsed.data.hook, diff: parsed.data.change.diff }] : [];
  });
}

/** The strategy hooks of a step, when it has any: what the run calls (a dry run calls none). */
function hookLines(step: TrainPlan["steps"][number]): string[] {
  const { strategy } = step;
  const hooks: string[] = [];
  if (strategy.kind === "canary" && strategy.promoteHook !== null)
    hooks.push(`promote ${describeHook(strategy.promoteHook)}`);
  if (strategy.kind === "blue_green" && strategy.cutoverHook !== null)
    hooks.push(`cutover ${describeHook(strategy.cutoverHook)}`);
  if (strategy.kind === "canary" && strategy.rollbackHook !== null)
    hooks.push(`rollback ${describeHook(strategy.rollbackHook)} (on halt)`);
  return hooks.length === 0 ? [] : [`     hooks:      ${hooks.join("; ")}`];
}

/**
 * The plan as text: what `release plan` prints and `release run --dry-run` must print the same.
 */
export function formatPlan(plan: TrainPlan): string {
  const lines = [
    `release train ${plan.train}: ${plan.steps.length} step${plan.steps.length === 1 ? "" : "s"}`,
  ];
  const checksLines = (checks: readonly HealthCheck[], indent: string) =>
    checks.length === 0
      ? [`${indent}none`]
      : checks.map((check) => `${indent}${describeCheck(check)}`);
  for (const step of plan.steps) {
    lines.push(
      `  ${step.index + 1}. ${step.service}: ${describeStrategy(step)}`,
      `     change:     ${step.summary}`,
      ...(step.deployedWhen === null || step.deployedWhen === undefined
        ? [
            // Said in every plan: a guard window that starts at the push checks the old version
            // when a person merges the branch later.
            `     deployed:   when the git actuator has pushed the change (declare deployedWhen if it must be merged or synced first)`,
          ]
        : [
            `     deployed:   when GET ${step.deployedWhen.check.http} answers ${describeExpectations(step.deployedWhen.check.expect)} (polled for ${step.deployedWhen.within}, else halt)`,
          ]),
      ...hookLines(step),
      `     guard:      ${step.guardWindow}, then check`,
      `     checks:`,
      ...checksLines(step.checks, "       "),
      `     regression: ${
        step.regression === null
          ? "none"
          : `new error series, or error ratio above ${step.regression.maxErrorRatioIncrease} × the baseline (floor ${(step.regression.minBaselineRatio ?? 0) * 100}%)`
      }`,
    );
  }
  lines.push("  final checks:", ...checksLines(plan.finalChecks, "    "));
  lines.push(
    `  follow-ups: ${plan.followUps.length === 0 ? "none" : plan.followUps.map((f) => `+${f.after}`).join(", ")} after the train finishes`,
  );
  return `${lines.join("\n")}\n`;
}

type Loaded =
  | {
      readonly ok: true;
      readonly trains: readonly ReleaseTrainDocument[];
      readonly services: readonly PlanService[];
    }
  | { readonly ok: false; readonly errors: readonly string[] };

const catalogErrors = (errors: readonly CatalogError[]) => errors.map(formatCatalogError);

/**
 * Loads the trains of MANIFEST and the services they name. A directory, or a file holding the
 * services too, is a catalog of its own; a file holding only trains takes the services from
 * `SAFEDEPLOY_CATALOG` (default ./catalog), its own Services first.
 */
export async function loadTrainManifest(manifest: string, io: CliIo): Promise<Loaded> {
  const absolute = resolve(io.cwd ?? ".", manifest);
  let isFile: boolean;
  try {
    isFile = (await stat(absolute)).isFile();
  } catch {
    return { ok: false, errors: [`${manifest}: cannot read the manifest`] };
  }
  if (!isFile) {
    const result = await loadCatalog(manifest, { cwd: io.cwd });
    if (!result.ok) return { ok: false, errors: catalogErrors(result.errors) };
    return { ok: true, trains: result.catalog.trains, services: result.catalog.services };
  }
  const parsed = parseCatalogText(await readFile(absolute, "utf8"), manifest);
  if (parsed.errors.length > 0) return { ok: false, errors: catalogErrors(parsed.errors) };
  const trains: ReleaseTrainDocument[] = [];
  const own: PlanService[] = [];
  for (const { document } of parsed.documents) {
    if (document.kind === "ReleaseTrain") trains.push(document);
    if (document.kind === "Service") own.push(document);
  }
  const names = new Set(
    own.map((service) => ("metadata" in service ? service.metadata.name : service.name)),
  );
  const missing = trains.some((train) => train.spec.steps.some((step) => !names.has(step.service)));
  if (!missing) return { ok: true, trains, services: own };
  const catalogPath = io.env.SAFEDEPLOY_CATALOG ?? "./catalog";
  const catalog = await loadCatalog(catalogPath, { cwd: io.cwd });
  if (!catalog.ok) {
    return {
      ok: false,
      errors: [
        `${manifest}: the train names services the manifest does not hold, and the catalog ${catalogPath} is invalid:`,
        ...catalogErrors(catalog.errors),
      ],
    };
  }
  const services = [
    ...own,
    ...catalog.catalog.services.filter((service) => !names.has(service.name)),
  ];
  return { ok: true, trains, services };
}

const plan: ReleaseSubcommand = {
  synopsis: "plan MANIFEST [--dry-run] [--json]",
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
      },
    });
    const [manifest, ...rest] = positionals;
    if (manifest === undefined || rest.length > 0)
      throw new UsageError("release plan takes one MANIFEST");
    const loaded = await loadTrainManifest(manifest, io);
    const invalid = (errors: readonly string[]) => {
      if (values.json) io.stdout(`${JSON.stringify({ valid: false, errors }, null, 2)}\n`);
      else io.stderr(`${errors.join("\n")}\n${manifest}: invalid release plan\n`);
      return EXIT.negative;
    };
    if (!loaded.ok) return invalid(loaded.errors);
    if (loaded.trains.length === 0) return invalid([`${manifest}: no ReleaseTrain document`]);
    const plans: TrainPlan[] = [];
    const errors: PlanError[] = [];
    for (const train of loaded.trains) {
      const result = planTrain(train, loaded.services);
      if (result.ok) plans.push(result.plan);
      else errors.push(...result.errors);
    }
    if (errors.length > 0) {
      return invalid(errors.map((error) => `${manifest}: ${error.message}`));
    }
    if (values.json) {
      io.stdout(`${JSON.stringify({ valid: true, dryRun: values["dry-run"], plans }, null, 2)}\n`);
      return EXIT.ok;
    }
    for (const trainPlan of plans) io.stdout(formatPlan(trainPlan));
    if (values["dry-run"]) io.stdout("dry run: nothing pushed\n");
    return EXIT.ok;
  },
};

/** How often `release run` asks the API how the train is doing. */
const POLL_MS = 500;

/** A step's rejection in its evidence: who rejected its promotion, and why. */
const RejectionEvidence = z.object({
  type: z.literal("rejection"),
  by: z.string(),
  reason: z.string(),
});

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * What a step stopped before its change waits for or was stopped by: the approvals it has and
 * how to add one, the gate's reasons, the rejection; empty for any other phase.
 */
function governanceNote(step: TrainView["steps"][number]): string {
  const { approval, gate } = step;
  if (step.phase === "awaiting-approval" && approval !== null && approval !== undefined) {
    const who = approval.approvals.length === 0 ? "" : ` (${approval.approvals.join(", ")})`;
    return `: ${approval.approvals.length} of ${plural(approval.required, "approval")}${who}; approve with: safedeploy proposals approve ${approval.proposalId}`;
  }
  if (step.phase === "blocked" && gate !== null && gate !== undefined) {
    const reasons = gate.reasons.map((r) => `${r.code}: ${r.message}`).join("; ");
    return ` by its gate (${gate.verdict}): ${reasons === "" ? "no reason given" : reasons}`;
  }
  if (step.phase === "rejected") {
    const rejection = step.evidence
      .map((item) => RejectionEvidence.safeParse(item))
      .find((parsed) => parsed.success)?.data;
    return rejection === undefined ? "" : ` by ${rejection.by}: ${rejection.reason}`;
  }
  return "";
}

/** One line per step phase and follow-up, so `run` prints each change once. */
function progressLines(train: TrainView): string[] {
  const lines = train.steps.map((step) => {
    const where =
      step.phase === "guarding" && step.guardUntil !== null ? ` until ${step.guardUntil}` : "";
    const commit = step.commit === null ? "" : ` (${step.commit.slice(0, 12)})`;
    const outcome = step.outcome === null ? "" : `: ${step.outcome}`;
    return `  step ${step.index + 1} ${step.service}: ${step.phase}${where}${commit}${outcome}${governanceNote(step)}`;
  });
  for (const followUp of train.followUps) {
    const step = followUp.attributedStep === null ? "" : `, step ${followUp.attributedStep + 1}`;
    lines.push(`  follow-up +${followUp.after} (due ${followUp.dueAt}): ${followUp.phase}${step}`);
  }
  return lines;
}

function printOutcome(train: TrainView, io: CliIo): void {
  io.stdout(
    `release train ${train.name} (${train.id}): ${train.state}${train.reason === null ? "" : `: ${train.reason}`}\n`,
  );
  if (train.revert !== null) {
    io.stdout(
      `  revert proposed for ${train.revert.service} only: ${train.revert.proposalId} (approve it to roll back)\n`,
    );
  }
  if (train.triage !== null) {
    io.stdout("  manual triage needed, nothing reverted; evidence:\n");
    for (const line of train.triage.evidence) io.stdout(`    ${line}\n`);
  }
}

const finished = (train: TrainView) => train.state !== "running";
const exitOf = (train: TrainView) => (train.state === "completed" ? EXIT.ok : EXIT.negative);

/** `--halt-on fatal|warning`, or `--fail-on-fatal` (the default spelled out): what halts a run. */
function haltOnOf(values: {
  readonly "halt-on"?: string | undefined;
  readonly "fail-on-fatal"?: boolean | undefined;
}): "fatal" | "warning" {
  const haltOn = values["halt-on"];
  if (haltOn !== undefined && haltOn !== "fatal" && haltOn !== "warning")
    throw new UsageError(`--halt-on takes fatal or warning, not ${JSON.stringify(haltOn)}`);
  if (values["fail-on-fatal"] === true && haltOn === "warning")
    throw new UsageError("--fail-on-fatal (only fatal checks halt) contradicts --halt-on warning");
  return haltOn ?? "fatal";
}

const run: ReleaseSubcommand = {
  synopsis: "run MANIFEST [--dry-run] [--halt-on fatal|warning | --fail-on-fatal] [--json]",
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        "halt-on": { type: "string" },
        "fail-on-fatal": { type: "boolean" },
      },
    });
    const [manifest, ...rest] = positionals;
    if (manifest === undefined || rest.length > 0)
      throw new UsageError("release run takes one MANIFEST");
    const haltOn = haltOnOf(values);
    const loaded = await loadTrainManifest(manifest, io);
    if (!loaded.ok) {
      io.stderr(`${loaded.errors.join("\n")}\n${manifest}: invalid release train\n`);
      return EXIT.negative;
    }
    const [train, ...others] = loaded.trains;
    if (train === undefined || others.length > 0) {
      io.stderr(`${manifest}: release run needs exactly one ReleaseTrain document\n`);
      return EXIT.negative;
    }
    const planned = planTrain(train, loaded.services);
    if (!planned.ok) {
      io.stderr(`${planned.errors.map((e) => `${manifest}: ${e.message}`).join("\n")}\n`);
      return EXIT.negative;
    }
    const dryRun = values["dry-run"];
    if (!values.json) io.stdout(formatPlan(planned.plan));
    return withApi("release run", io, async (api) => {
      let { value: current } = await api.post(
        apiPath(["trains"]),
        { train, dryRun, haltOn },
        TrainView,
      );
      if (!values.json) {
        const how = [
          ...(dryRun ? ["dry run"] : []),
          ...(haltOn === "warning" ? ["warnings halt"] : []),
        ];
        io.stdout(`started ${current.id}${how.length === 0 ? "" : ` (${how.join(", ")})`}\n`);
      }
      const shown = new Set<string>();
      const show = (view: TrainView) => {
        if (values.json) return;
        for (const line of progressLines(view)) {
          if (shown.has(line)) continue;
          shown.add(line);
          io.stdout(`${line}\n`);
        }
      };
      show(current);
      let raw: unknown = current;
      while (!finished(current)) {
        await sleep(POLL_MS);
        const answer = await api.get(apiPath(["trains", current.id]), TrainView);
        current = answer.value;
        raw = answer.raw;
        show(current);
      }
      if (values.json) {
        printJson(io, raw);
        return exitOf(current);
      }
      if (dryRun) {
        for (const step of current.steps) {
          if (step.approval !== null && step.approval !== undefined) {
            io.stdout(
              `--- step ${step.index + 1} ${step.service}: its promotion would need ${plural(step.approval.required, "distinct approval")} (no proposal in a dry run)\n`,
            );
          }
          if (step.diff !== null) {
            io.stdout(
              `--- step ${step.index + 1} ${step.service}: diff (not pushed)\n${step.diff}`,
            );
          }
          for (const hook of manifestHookDiffs(step)) {
            io.stdout(
              `--- step ${step.index + 1} ${step.service}: ${hook.hook} hook diff (not pushed)\n${hook.diff}`,
            );
          }
        }
        io.stdout("dry run: nothing pushed\n");
      }
      printOutcome(current, io);
      return exitOf(current);
    });
  },
};

const status: ReleaseSubcommand = {
  synopsis: "status TRAIN-ID|MANIFEST [--json]",
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    const [target, ...rest] = positionals;
    if (target === undefined || rest.length > 0)
      throw new UsageError("release status takes one TRAIN-ID or MANIFEST");
    let name: string | null = null;
    if (!/^TRN-[0-9A-F]+$/.test(target)) {
      const loaded = await loadTrainManifest(target, io);
      if (!loaded.ok || loaded.trains.length !== 1) {
        io.stderr(`${target}: neither a train id (TRN-…) nor a manifest with one ReleaseTrain\n`);
        return EXIT.negative;
      }
      name = loaded.trains[0]?.metadata.name ?? null;
    }
    return withApi("release status", io, async (api) => {
      let id = target;
      if (name !== null) {
        const { value } = await api.get(apiPath(["trains"]), listOf(TrainView));
        const latest = value.items.find((t) => t.name === name);
        if (latest === undefined) {
          io.stderr(`no run of release train ${name} yet\n`);
          return EXIT.negative;
        }
        id = latest.id;
      }
      const { value, raw } = await api.get(apiPath(["trains", id]), TrainView);
      if (values.json) {
        printJson(io, raw);
        return value.state === "running" ? EXIT.ok : exitOf(value);
      }
      for (const line of progressLines(value)) io.stdout(`${line}\n`);
      printOutcome(value, io);
      return value.state === "running" ? EXIT.ok : exitOf(value);
    });
  },
};

/** The `release` subcommands by name. */
export const RELEASE_SUBCOMMANDS: Readonly<Record<string, ReleaseSubcommand>> = {
  plan,
  run,
  status,
};

/** `safedeploy release plan|run|status MANIFEST`: staged multi-service release trains. */
export const release: Command = {
  name: "release",
  summary:
    "release trains: plan a staged multi-service promotion (exit 0 valid, 1 invalid or halted)",
  get usage() {
    const synopses = Object.values(RELEASE_SUBCOMMANDS).map(
      (sub) => `safedeploy release ${sub.synopsis}`,
    );
    return `Usage: ${synopses.join("\n       ")}

plan: prints the ordered plan of the ReleaseTrain in MANIFEST: per step the service, its
deploy strategy (canary weights and bake time, blue_green cutover, rolling), the change
(image or patch) aimed at the service's rollback.path, the guard window, the health checks
and the regression rule; then the final checks and the follow-ups. MANIFEST is a catalog
file or directory; when a file holds only the train, its services come from
$SAFEDEPLOY_CATALOG (default ./catalog). Nothing is pushed (--dry-run says so).
Exit 0 valid plan, 1 invalid (each problem named), 2 usage.

Options:
  --json     print {"valid", "plans": [...]} or {"valid": false, "errors": [...]} on stdout
  --dry-run  nothing is pushed (plan never pushes)

run: prints the same plan, starts the train through the API at $SAFEDEPLOY_API (token
$SAFEDEPLOY_TOKEN, role approver) and follows it, one line per step phase, until it finishes.
Every step goes through the same governance as any proposal: its service's gate is asked
first (anything but pass blocks the step and halts the train, nothing pushed), then the
step's promotion is a proposal (TRAIN-sN) that you approve by starting the train; when the
service's policy requires more distinct approvers the step waits in awaiting-approval until
they approve it (safedeploy proposals approve TRAIN-sN), then the gate is asked again. A
rejection halts the train, nothing pushed. A step that fails its guard blocks its service's
gate until its revert is executed or an approver clears it. A step with deployedWhen waits
until that probe passes (the change merged, synced and serving): that moment is its deploy
time, and a step not live within its deadline halts the train. With --dry-run every step's gate is asked, its commit and
diff computed and printed with the approvals its promotion would need, checks run, guard
windows and deployedWhen are not waited, no proposal is made, nothing is pushed or reverted.
A step's strategy hooks (canary promote, blue_green cutover; canary rollback beside a
revert) run once the change landed: an http hook is called by the release-train service,
a manifest hook is committed by the git actuator (branch safedeploy/TRAIN-sN-HOOK); the
guard window starts after it, and a failing hook halts the train at that step. A dry run
calls no http hook and prints each manifest hook's diff.
Exit 0 completed, 1 halted (the gate's block, the rejection or the revert proposal is
printed) or needs triage (the evidence is printed).
  --json              print the finished train (steps, evidence, revert, manifest) as JSON
  --fail-on-fatal     only fatal check results halt the train; warnings (degraded but
                      functional) are recorded and the train goes on (the default)
  --halt-on LEVEL     fatal (the same as --fail-on-fatal) or warning: a warning halts too

status: the latest run of the train in MANIFEST, or the train TRAIN-ID: its steps (a blocked
step with its gate's reasons, a step awaiting approval with its approvals and how to approve),
follow-ups, revert and outcome. Exit 0 running or completed, 1 halted or needs triage.
  --json     the train as JSON, its release manifest included (the export)`;
  },
  async run(args, io) {
    const [name, ...rest] = args;
    const subcommand =
      name !== undefined && Object.hasOwn(RELEASE_SUBCOMMANDS, name)
        ? RELEASE_SUBCOMMANDS[name]
        : undefined;
    if (subcommand === undefined) {
      throw new UsageError(
        `release needs a subcommand: ${Object.keys(RELEASE_SUBCOMMANDS).join(", ")}`,
      );
    }
    return subcommand.run(rest, io);
  },
};
