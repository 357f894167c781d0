import { parseArgs } from "node:util";
import { z } from "zod";
import { apiPath, printAnswer, withApi } from "../api.js";
import { UsageError } from "../io.js";
import type { Command } from "../io.js";
import { formatTable } from "../table.js";

const USAGE = `Usage: safedeploy dora [--service S] [--team T] [--since 30d|TIME] [--until TIME]
                      [--failure-window 24h] [--json]

The four DORA keys from the audit log, per service, per team (the catalog owner) and over
everything chosen, from the control plane at $SAFEDEPLOY_API (default http://127.0.0.1:8080,
token $SAFEDEPLOY_TOKEN): deploys and deploys per day, lead time for changes (commit → deploy,
median), change failure rate (deploys followed within the failure window by an incident or a
rollback) and time to restore (incident opened → resolved, median). docs/dora.md says exactly
what counts. Exit 0, 1 when the API cannot be reached or refuses (message shown), 2 usage error.

Options:
  --service S           only service S
  --team T              only the services team T owns in the catalog
  --since 30d|TIME      from a duration ago or an ISO 8601 time (default 30d)
  --until TIME          up to a duration ago or an ISO 8601 time (default now)
  --failure-window D    how long after a deploy a failure counts against it (default 24h)
  --json                print the API's JSON answer`;

const Stats = z.looseObject({ samples: z.number(), medianSeconds: z.number().nullable() });
const Metrics = z.looseObject({
  deploys: z.number(),
  deploysPerDay: z.number(),
  leadTime: Stats,
  failedDeploys: z.number(),
  changeFailureRate: z.number().nullable(),
  incidents: z.number(),
  unresolvedIncidents: z.number(),
  timeToRestore: Stats,
});
type Metrics = z.infer<typeof Metrics>;

/** The answer of `GET /v1/dora`, as far as the table reads it. */
const DoraAnswer = z.looseObject({
  since: z.string(),
  until: z.string(),
  overall: Metrics,
  services: z.array(Metrics.extend({ service: z.string(), team: z.string().nullable() })),
  teams: z.array(Metrics.extend({ team: z.string().nullable() })),
});
type DoraAnswer = z.infer<typeof DoraAnswer>;

/** Seconds as the two largest units: `45s`, `12m 5s`, `3h 20m`, `2d 4h`; `-` for none. */
export function humanDuration(seconds: number | null): string {
  if (seconds === null) return "-";
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  let rest = Math.round(seconds);
  if (rest <= 0) return "0s";
  const parts: [number, string][] = [];
  for (const [unit, size] of units) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0) parts.push([amount, unit]);
    if (parts.length === 2) break;
  }
  return parts
    .filter(([amount]) => amount > 0)
    .map(([amount, unit]) => `${amount}${unit}`)
    .join(" ");
}

const cells = (m: Metrics) => [
  String(m.deploys),
  m.deploysPerDay.toFixed(2),
  humanDuration(m.leadTime.medianSeconds),
  m.changeFailureRate === null
    ? "-"
    : `${(m.changeFailureRate * 100).toFixed(0)}% (${m.failedDeploys}/${m.deploys})`,
  humanDuration(m.timeToRestore.medianSeconds),
  m.unresolvedIncidents > 0
    ? `${m.incidents} (${m.unresolvedIncidents} open)`
    : String(m.incidents),
];

/** One row per service, then per team, then all of them. */
export function doraTable(answer: DoraAnswer): string {
  const head = `DORA metrics from ${answer.since} to ${answer.until}\n`;
  const header = [
    "",
    "TEAM",
    "DEPLOYS",
    "PER DAY",
    "LEAD TIME",
    "CHANGE FAILURE",
    "RESTORE",
    "INCIDENTS",
  ];
  const rows = [
    ...answer.services.map((s) => [s.service, s.team ?? "-", ...cells(s)]),
    ...answer.teams.map((t) => [`team ${t.team ?? "(none)"}`, t.team ?? "-", ...cells(t)]),
    ["all", "", ...cells(answer.overall)],
  ];
  return head + formatTable(header, rows);
}

/** `safedeploy dora`. */
export const dora: Command = {
  name: "dora",
  summary: "DORA metrics per service and team: deploys, lead time, change failures, restore",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        service: { type: "string" },
        team: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        "failure-window": { type: "string" },
      },
    });
    if (positionals.length > 0) throw new UsageError("dora takes no arguments");
    const query = {
      service: values.service,
      team: values.team,
      since: values.since,
      until: values.until,
      failureWindow: values["failure-window"],
    };
    return withApi("dora", io, async (api) => {
      const answer = await api.get(apiPath(["dora"], query), DoraAnswer);
      return printAnswer(io, answer, values.json, doraTable);
    });
  },
};
