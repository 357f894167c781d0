import { parseArgs } from "node:util";
import { CanaryView, ResourceName } from "@safedeploy/schema";
import { apiPath, printJson, withApi } from "../api.js";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";

const USAGE = `Usage: safedeploy canary report SERVICE (--step N | --weight W) [--since TIME] [--reason TEXT] [--json]

Tells SafeDeploy (API $SAFEDEPLOY_API, token $SAFEDEPLOY_TOKEN, a viewer token suffices)
that SERVICE's canary entered a step, for delivery tools other than Argo Rollouts (whose
step notifications do the same through POST /v1/deploys). --step N is the N-th (from 1) of
the catalog's canary.steps, --weight W one of their weights. The step's bake starts at
--since (default now): once the gate allows promotion for the service's bakeTime, a
promote-canary proposal to the next weight is drafted; a burning canary gets its
rollback proposal instead. Reporting the same step again changes nothing.

Exit 0 reported, 1 refused (unknown service, no canary strategy, not a declared step),
2 usage error.`;

const positiveInt = (text: string | undefined, option: string): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^\d{1,3}$/.test(text)) throw new UsageError(`${option} must be a whole number`);
  return Number(text);
};

/** `safedeploy canary report SERVICE --step N`: a canary step from outside, its bake starts. */
export const canary: Command = {
  name: "canary",
  summary: "report that a service's canary entered a step (its bake starts)",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        step: { type: "string" },
        weight: { type: "string" },
        since: { type: "string" },
        reason: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    const [sub, service, ...extra] = positionals;
    if (sub !== "report") throw new UsageError("canary needs a subcommand: report");
    if (service === undefined || !ResourceName.safeParse(service).success) {
      throw new UsageError("canary report needs a SERVICE ([a-z0-9-])");
    }
    if (extra.length > 0) throw new UsageError("canary report takes one SERVICE");
    const step = positiveInt(values.step, "--step");
    const weight = positiveInt(values.weight, "--weight");
    if ((step === undefined) === (weight === undefined)) {
      throw new UsageError("canary report needs exactly one of --step N or --weight W");
    }
    if (values.since !== undefined && Number.isNaN(Date.parse(values.since))) {
      throw new UsageError("--since must be an ISO time");
    }
    const body = {
      ...(step === undefined ? {} : { step }),
      ...(weight === undefined ? {} : { weight }),
      ...(values.since === undefined ? {} : { since: new Date(values.since).toISOString() }),
      reason: values.reason ?? "reported with safedeploy canary report",
    };
    return withApi("canary", io, async (api) => {
      const { value, raw } = await api.post(
        apiPath(["services", service, "canary"]),
        body,
        CanaryView,
      );
      if (values.json) printJson(io, raw);
      else {
        const next = value.next === null ? "the last step" : `next step ${value.next}%`;
        io.stdout(`${service}: canary at ${value.weight}% baking since ${value.since} (${next})\n`);
      }
      return EXIT.ok;
    });
  },
};
