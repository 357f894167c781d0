import { parseArgs } from "node:util";
import { formatCatalogError, loadCatalog } from "@safedeploy/catalog";
import type { CatalogService } from "@safedeploy/catalog";
import {
  changedDecisions,
  firstDifference,
  gateDeclaration,
  replayService,
} from "@safedeploy/core";
import type { ReplayDecision, ReplayPolicy } from "@safedeploy/core";
import { readHistory } from "@safedeploy/jetstream";
import { parseDuration, resolvePolicy, staleAfterMs } from "@safedeploy/schema";
import type { PolicySpec, StreamName } from "@safedeploy/schema";
import { connectFromEnv } from "../bus.js";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

const STREAMS: readonly StreamName[] = ["METRICS", "BUDGET", "INCIDENTS", "GOVERNANCE"];

/** An ISO time, or a duration meaning that long before `now` (`2h` → two hours ago). */
export function parseTime(text: string, now: number, option: string): string {
  const ago = parseDuration(text);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) {
    throw new UsageError(
      `${option} must be an ISO 8601 time or a duration such as 2h (got "${text}")`,
    );
  }
  return new Date(at).toISOString();
}

function replayPolicy(
  service: CatalogService,
  policy: PolicySpec,
  pollIntervalMs: number,
): ReplayPolicy {
  return {
    burnRules: policy.burnRates,
    incident: {
      openIncidentOn: policy.openIncidentOn,
      resolveAfterMs: parseDuration(policy.resolveAfter) ?? 15 * 60_000,
      sloNames: service.spec.slos.map((slo) => slo.name),
    },
    gate: gateDeclaration(service.spec, policy, staleAfterMs(policy, pollIntervalMs)),
    freezeOnExhaustionMs: parseDuration(policy.freezeOnExhaustion) ?? 86_400_000,
  };
}

async function loadPolicyFile(path: string, io: CliIo): Promise<PolicySpec> {
  const result = await loadCatalog(path, { cwd: io.cwd });
  if (!result.ok) {
    throw new UsageError(
      `--policy ${path} is invalid:\n${result.errors.map(formatCatalogError).join("\n")}`,
    );
  }
  const [first] = result.catalog.policies;
  if (first === undefined) throw new UsageError(`--policy ${path} holds no Policy document`);
  return result.catalog.policies.length === 1 ? first.spec : result.catalog.defaultPolicy;
}

const line = (d: ReplayDecision | null) =>
  d === null ? "(nothing)" : `${d.at} ${d.kind}: ${d.summary}`;

/** `safedeploy replay --service S --since T [--until T] [--policy FILE] [--json]`. */
export const replay: Command = {
  name: "replay",
  summary: "re-derive a service's decisions from JetStream history (exit 0 identical, 1 differs)",
  usage: `Usage: safedeploy replay --service SERVICE --since TIME [--until TIME] [--policy FILE]
                         [--warmup DURATION] [--json]

Reads SERVICE's messages of the METRICS, BUDGET, INCIDENTS and GOVERNANCE streams stored between
--since and --until (ISO 8601 times, or durations ago: --since 2h), runs them through the same
core decisions the services use (budget evaluations from SLI snapshots, incident openings,
escalations and automatic resolutions, exhaustion freezes, promotion verdicts — on evidence,
people's freezes, release guards and the policy service's clock), and compares each kind of
decision with what was recorded. History from --warmup (default 1h) before --since is folded in first,
so state that started earlier is known; it is not compared.
Exit 0 identical, 1 differs (the first difference is printed), 2 usage error.

With --policy FILE (a YAML file with a Policy document) the decisions are re-derived under that
policy instead of the catalog's, and every decision that would have been different is listed
(what-if); exit 1 when any would have changed.

Environment: NATS_URL, SAFEDEPLOY_CATALOG (default ./catalog), SAFEDEPLOY_SUBJECT_ROOT,
SAFEDEPLOY_STREAM_PREFIX, SAFEDEPLOY_POLL_INTERVAL (default 30s: evidence is stale after three
intervals unless the policy sets staleAfter, as the services judge it).

Options:
  --service SERVICE   the catalog service to replay (required)
  --since TIME        start of the range (required)
  --until TIME        end of the range (default: now)
  --policy FILE       what-if: replay under this policy
  --warmup DURATION   history read before --since to rebuild state (default 1h)
  --json              print the result as JSON`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        service: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        policy: { type: "string" },
        warmup: { type: "string", default: "1h" },
        json: { type: "boolean", default: false },
      },
    });
    if (positionals.length > 0) throw new UsageError("replay takes no positional arguments");
    if (values.service === undefined) throw new UsageError("--service is required");
    if (values.since === undefined) throw new UsageError("--since is required");
    const now = Date.now();
    const since = parseTime(values.since, now, "--since");
    const until = values.until === undefined ? undefined : parseTime(values.until, now, "--until");
    const warmupMs = parseDuration(values.warmup);
    if (warmupMs === undefined) throw new UsageError("--warmup must be a duration such as 1h");

    const catalogPath = io.env.SAFEDEPLOY_CATALOG ?? "./catalog";
    const catalog = await loadCatalog(catalogPath, { cwd: io.cwd });
    if (!catalog.ok) {
      io.stderr(`catalog ${catalogPath} is invalid:\n`);
      for (const error of catalog.errors) io.stderr(`${formatCatalogError(error)}\n`);
      return EXIT.usage;
    }
    const service = catalog.catalog.services.find((s) => s.name === values.service);
    if (service === undefined) {
      throw new UsageError(`no service named ${values.service} in the catalog at ${catalogPath}`);
    }
    const whatIf =
      values.policy === undefined
        ? undefined
        : resolvePolicy(await loadPolicyFile(values.policy, io), service.spec.policy);

    const bus = await connectFromEnv(io, "safedeploy-replay");
    const from = new Date(Date.parse(since) - warmupMs).toISOString();
    let entries;
    try {
      // The streams at once: each read waits on the server between batches.
      const reads = await Promise.all(
        STREAMS.map((stream) =>
          readHistory(bus, {
            stream,
            service: service.name,
            since: from,
            ...(until === undefined ? {} : { until }),
          }),
        ),
      );
      entries = reads.flat();
    } finally {
      await bus.close();
    }
    // One timeline in the order the server stored the messages.
    // Server times are ISO 8601 of one length: compared as strings, not by locale (slow at 100k).
    entries.sort(
      (a, b) =>
        (a.storedAt < b.storedAt ? -1 : a.storedAt > b.storedAt ? 1 : 0) ||
        STREAMS.indexOf(a.stream) - STREAMS.indexOf(b.stream) ||
        a.seq - b.seq,
    );
    const history = entries.map((entry) => entry.envelope);
    // Messages stored during the warm-up rebuild state; decisions are compared from --since on.
    const firstCompared = entries.filter((entry) => entry.storedAt < since).length;
    const pollIntervalMs = parseDuration(io.env.SAFEDEPLOY_POLL_INTERVAL ?? "30s");
    if (pollIntervalMs === undefined || pollIntervalMs <= 0) {
      throw new UsageError("SAFEDEPLOY_POLL_INTERVAL must be a duration such as 30s");
    }
    const result = replayService(
      history,
      replayPolicy(service, service.policy, pollIntervalMs),
      firstCompared,
    );
    const counts = (kind: ReplayDecision["kind"]) =>
      result.derived.filter((d) => d.kind === kind).length;
    const range = `${service.name} from ${since} to ${until ?? "now"} (${history.length - firstCompared} messages)`;

    if (whatIf !== undefined) {
      const alternative = replayService(
        history,
        replayPolicy(service, whatIf, pollIntervalMs),
        firstCompared,
      );
      const changes = changedDecisions(result.derived, alternative.derived);
      if (values.json) {
        io.stdout(
          `${JSON.stringify({ service: service.name, since, until: until ?? null, changes }, null, 2)}\n`,
        );
      } else if (changes.length === 0) {
        io.stdout(
          `what-if ${range}: no decision would have changed under ${values.policy ?? ""}\n`,
        );
      } else {
        io.stdout(
          `what-if ${range}: ${changes.length} decision(s) would have changed under ${values.policy ?? ""}:\n`,
        );
        for (const change of changes) {
          io.stdout(`  was:   ${line(change.before)}\n  would: ${line(change.after)}\n`);
        }
      }
      return changes.length === 0 ? EXIT.ok : EXIT.negative;
    }

    const difference = firstDifference(result);
    if (values.json) {
      io.stdout(
        `${JSON.stringify({ service: service.name, since, until: until ?? null, messages: history.length, identical: difference === null, firstDifference: difference, recorded: result.recorded.length, derived: result.derived.length }, null, 2)}\n`,
      );
    } else if (difference === null) {
      io.stdout(
        `identical: ${range}: ${counts("budget")} budget evaluations, ${counts("incident")} incident decisions, ${counts("freeze")} exhaustion freezes, ${counts("verdict")} verdicts re-derived as recorded\n`,
      );
    } else {
      io.stderr(
        `differs: ${range}, at ${difference.recorded?.kind ?? difference.derived?.kind ?? ""} decision #${difference.index + 1}:\n` +
          `  recorded: ${line(difference.recorded)}${difference.recorded?.messageId === undefined ? "" : ` [${difference.recorded.messageId}]`}\n` +
          `  derived:  ${line(difference.derived)}\n`,
      );
    }
    return difference === null ? EXIT.ok : EXIT.negative;
  },
};
