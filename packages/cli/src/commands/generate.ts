import { writeFile } from "node:fs/promises";
import { composeSecretsFile } from "./compose-secrets.js";
import { flaggerGateWebhooks, gitopsPromoterGate } from "./gate-consumers.js";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_NAMESPACE, ResourceName, natsPermissionsConfig } from "@safedeploy/schema";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

const TOKEN = /^[a-z][a-z0-9_-]*$/;
const PREFIX = /^[A-Za-z0-9_-]*$/;

/** One artefact `generate` can print: its synopsis and what it runs with its own arguments. */
interface Generator {
  readonly synopsis: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

const natsPermissions: Generator = {
  synopsis: "nats-permissions [--out FILE] [--root TOKEN] [--prefix PREFIX]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        out: { type: "string" },
        root: { type: "string", default: DEFAULT_NAMESPACE.root },
        prefix: { type: "string", default: DEFAULT_NAMESPACE.prefix },
      },
    });
    if (positionals.length > 0) {
      throw new UsageError("usage: safedeploy generate nats-permissions [--out FILE]");
    }
    if (!TOKEN.test(values.root))
      throw new UsageError("--root must be one lowercase subject token");
    if (!PREFIX.test(values.prefix))
      throw new UsageError("--prefix must be letters, digits, _ or -");
    const config = natsPermissionsConfig({ root: values.root, prefix: values.prefix });
    if (values.out === undefined) {
      io.stdout(config);
    } else {
      const path = io.cwd === undefined ? values.out : resolve(io.cwd, values.out);
      await writeFile(path, config);
      io.stderr(`wrote ${values.out}\n`);
    }
    return EXIT.ok;
  },
};

const composeSecrets: Generator = {
  synopsis: "compose-secrets [--out FILE] [--force]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { out: { type: "string" }, force: { type: "boolean" } },
    });
    if (positionals.length > 0) {
      throw new UsageError("usage: safedeploy generate compose-secrets [--out FILE] [--force]");
    }
    const text = composeSecretsFile();
    if (values.out === undefined) {
      io.stdout(text);
      return EXIT.ok;
    }
    const path = io.cwd === undefined ? values.out : resolve(io.cwd, values.out);
    try {
      // Never replaces existing passwords unless asked: PostgreSQL keeps the ones it started with.
      await writeFile(path, text, { mode: 0o600, flag: values.force === true ? "w" : "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      io.stderr(`${values.out} exists: not replacing its passwords (--force to)\n`);
      return EXIT.negative;
    }
    io.stderr(`wrote ${values.out} (mode 0600)\n`);
    return EXIT.ok;
  },
};

const DEFAULT_API = "http://127.0.0.1:8080";

/** The API base from --api, else SAFEDEPLOY_API, else the default; no trailing slash. */
function apiBase(given: string | undefined, io: CliIo): string {
  const base = given ?? io.env.SAFEDEPLOY_API ?? DEFAULT_API;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`--api must be an http(s) URL, got ${JSON.stringify(base)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--api must be an http(s) URL, got ${JSON.stringify(base)}`);
  }
  return base.replace(/\/+$/, "");
}

/** The one SERVICE a gate generator takes. */
function oneService(positionals: readonly string[], what: string): string {
  const [service, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`${what} takes one SERVICE`);
  return serviceName(service, what);
}

/** A Kubernetes object name option (`--secret`, `--strategy`), required. */
function objectName(option: string, value: string | undefined): string {
  if (value === undefined || !ResourceName.safeParse(value).success) {
    throw new UsageError(`${option} must be a Kubernetes object name ([a-z0-9-])`);
  }
  return value;
}

/** `--interval` in the duration syntax of the tool that reads it. */
function interval(value: string, syntax: RegExp): string {
  if (!syntax.test(value)) {
    throw new UsageError("--interval must be a duration like 30s or 1m");
  }
  return value;
}

function serviceName(text: string | undefined, what: string): string {
  if (text === undefined) throw new UsageError(`${what} needs a SERVICE`);
  if (!ResourceName.safeParse(text).success) {
    throw new UsageError(`SERVICE must be a service name ([a-z0-9-]), got ${JSON.stringify(text)}`);
  }
  return text;
}

/**
 * An Argo Rollouts AnalysisTemplate whose `web` metric asks SafeDeploy's gate: successful when
 * its verdict is `pass`, failed when `block`, and Inconclusive otherwise (`unknown`: the gate
 * cannot see), which pauses the rollout for a person instead of passing it. The token comes from
 * a Secret through the `safedeploy-token` argument.
 */
export function argoAnalysisTemplate(input: {
  readonly service: string;
  readonly api: string;
  readonly secret: string;
  readonly interval: string;
}): string {
  const name = `safedeploy-gate-${input.service}`;
  return `# Argo Rollouts AnalysisTemplate: SafeDeploy's gate for ${input.service}.
# Reference it from a canary step:
#   steps:
#     - analysis:
#         templates: [{ templateName: ${name} }]
# The token is read from the Secret ${input.secret} (key "token"), a SafeDeploy viewer token.
# verdict pass: Successful; block: Failed (the rollout aborts); unknown (no data, stale
# evidence, failed queries): Inconclusive, so the rollout pauses for a person.
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: ${name}
  labels:
    app.kubernetes.io/managed-by: safedeploy
spec:
  args:
    - name: safedeploy-token
      valueFrom:
        secretKeyRef:
          name: ${input.secret}
          key: token
  metrics:
    - name: safedeploy-gate
      interval: ${input.interval}
      count: 1
      failureLimit: 0
      successCondition: result == "pass"
      failureCondition: result == "block"
      provider:
        web:
          method: GET
          url: "${input.api}/v1/services/${input.service}/gate"
          timeoutSeconds: 10
          headers:
            - key: Authorization
              value: "Bearer {{args.safedeploy-token}}"
          jsonPath: "{$.verdict}"
`;
}

const argoAnalysis: Generator = {
  synopsis: "argo-analysis SERVICE [--api URL] [--secret NAME] [--interval DURATION]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        api: { type: "string" },
        secret: { type: "string", default: "safedeploy-token" },
        interval: { type: "string", default: "30s" },
      },
    });
    io.stdout(
      argoAnalysisTemplate({
        service: oneService(positionals, "argo-analysis"),
        api: apiBase(values.api, io),
        secret: objectName("--secret", values.secret),
        interval: interval(values.interval, /^\d+(ms|s|m|h)$/),
      }),
    );
    await Promise.resolve();
    return EXIT.ok;
  },
};

/**
 * A GitHub Actions step that asks SafeDeploy's gate and fails the job when it says no: with
 * `safedeploy gate` (exit 3 blocked) when the CLI is there, else with curl and the answer's
 * `allowed` field. The service is a fixed name, or the `SAFEDEPLOY_SERVICE` env of the job.
 */
export function ciGateStep(input: {
  readonly service: string | undefined;
  readonly api: string;
}): string {
  const service = input.service ?? "${{ env.SAFEDEPLOY_SERVICE }}";
  return `# GitHub Actions step: fails the job when SafeDeploy's gate blocks ${input.service ?? "the service"}.
# Needs the repository secret SAFEDEPLOY_TOKEN (a viewer token).
- name: SafeDeploy gate${input.service === undefined ? "" : ` (${input.service})`}
  shell: bash
  env:
    SAFEDEPLOY_API: ${input.api}
    SAFEDEPLOY_TOKEN: \${{ secrets.SAFEDEPLOY_TOKEN }}
    SERVICE: ${service}
  run: |
    set -euo pipefail
    if command -v safedeploy >/dev/null 2>&1; then
      # exit 0 pass, 3 block, 4 unknown (the reasons are printed); only pass goes on.
      safedeploy gate "$SERVICE"
      exit $?
    fi
    answer=$(curl --fail-with-body --silent --show-error --max-time 30 \\
      -H "Authorization: Bearer $SAFEDEPLOY_TOKEN" \\
      "$SAFEDEPLOY_API/v1/services/$SERVICE/gate")
    echo "$answer"
    if echo "$answer" | jq -e '.verdict == "pass"' >/dev/null; then
      echo "SafeDeploy: $SERVICE may be promoted"
    else
      echo "::error title=SafeDeploy gate::$SERVICE is not allowed ($(echo "$answer" | jq -r '.verdict')): $(echo "$answer" | jq -r '[.reasons[]?.message] | join("; ")')"
      exit 1
    fi
`;
}

const ciGate: Generator = {
  synopsis: "ci-gate [--service SERVICE] [--api URL]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { service: { type: "string" }, api: { type: "string" } },
    });
    if (positionals.length > 0) throw new UsageError("ci-gate takes no positional argument");
    const service =
      values.service === undefined ? undefined : serviceName(values.service, "ci-gate");
    io.stdout(ciGateStep({ service, api: apiBase(values.api, io) }));
    await Promise.resolve();
    return EXIT.ok;
  },
};

const flaggerGate: Generator = {
  synopsis: "flagger-gate SERVICE [--api URL] [--token TOKEN]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { api: { type: "string" }, token: { type: "string" } },
    });
    const name = oneService(positionals, "flagger-gate");
    const token = values.token ?? io.env.SAFEDEPLOY_TOKEN ?? "REPLACE-WITH-A-VIEWER-TOKEN";
    io.stdout(flaggerGateWebhooks({ service: name, api: apiBase(values.api, io), token }));
    await Promise.resolve();
    return EXIT.ok;
  },
};

const gitopsPromoter: Generator = {
  synopsis:
    "gitops-promoter SERVICE --strategy NAME [--api URL] [--secret NAME] [--interval DURATION]",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        api: { type: "string" },
        strategy: { type: "string" },
        secret: { type: "string", default: "safedeploy-token" },
        interval: { type: "string", default: "1m" },
      },
    });
    io.stdout(
      gitopsPromoterGate({
        service: oneService(positionals, "gitops-promoter"),
        api: apiBase(values.api, io),
        strategy: objectName("--strategy", values.strategy),
        secret: objectName("--secret", values.secret),
        interval: interval(values.interval, /^\d+(s|m|h)$/),
      }),
    );
    await Promise.resolve();
    return EXIT.ok;
  },
};

/** Options of any generator that take a value (so the value is not taken for the artefact). */
const VALUED = new Set([
  "--out",
  "--root",
  "--prefix",
  "--api",
  "--secret",
  "--interval",
  "--service",
  "--token",
  "--strategy",
]);

/** What `generate` can print, by name. */
const GENERATORS: Readonly<Record<string, Generator>> = {
  "nats-permissions": natsPermissions,
  "compose-secrets": composeSecrets,
  "argo-analysis": argoAnalysis,
  "ci-gate": ciGate,
  "flagger-gate": flaggerGate,
  "gitops-promoter": gitopsPromoter,
};

const synopses = Object.values(GENERATORS)
  .map((generator) => `safedeploy generate ${generator.synopsis}`)
  .join("\n       ");

/** `safedeploy generate ARTEFACT`: deployment artefacts that are derived, never hand-written. */
export const generate: Command = {
  name: "generate",
  summary:
    "generate deployment artefacts (nats-permissions, compose-secrets, argo-analysis SERVICE, ci-gate, flagger-gate SERVICE, gitops-promoter SERVICE)",
  usage: `Usage: ${synopses}

nats-permissions: prints the nats-server configuration with a provisioner user (creates
the topology: safedeploy provision) and one user per service, each allowed only its own
subjects, to bind to and pull from its own durables, its KV buckets and commands
(deploy/nats/permissions.conf is this output, committed). Passwords are references to
$SAFEDEPLOY_NATS_<SERVICE>_PASSWORD in the server's environment; the file holds no
secret. --out writes FILE instead of stdout. --root and --prefix name the subject root
and the stream/consumer/bucket prefix (default sd and none, as SAFEDEPLOY_SUBJECT_ROOT
and SAFEDEPLOY_STREAM_PREFIX).

compose-secrets: prints (or writes to FILE, mode 0600, never replacing an existing
file unless --force) the env file docker-compose.yml reads: a random password for
every NATS user (SAFEDEPLOY_NATS_<USER>_PASSWORD, the provisioner's included) and
for PostgreSQL (SAFEDEPLOY_PG_ADMIN_PASSWORD, SAFEDEPLOY_PG_MIGRATOR_PASSWORD,
SAFEDEPLOY_PG_AUDIT_PASSWORD, SAFEDEPLOY_PG_GATEWAY_PASSWORD). Use --out .env.

argo-analysis: prints an Argo Rollouts AnalysisTemplate (argoproj.io/v1alpha1) with a
web metric on GET {api}/v1/services/SERVICE/gate reading {$.verdict}: Successful on
pass, Failed on block, Inconclusive on unknown (the rollout pauses for a person), to
reference from canary steps. The bearer token comes from the Kubernetes Secret
--secret (default safedeploy-token, key "token"). --api defaults to $SAFEDEPLOY_API,
else http://127.0.0.1:8080; --interval (default 30s) is the metric's interval.

ci-gate: prints a GitHub Actions step that runs "safedeploy gate SERVICE" (or curl on
the gate endpoint when the CLI is not installed) and fails the job unless the gate's
verdict is pass. Without --service the step reads the job's SAFEDEPLOY_SERVICE env.

flagger-gate: prints Flagger Canary analysis webhooks (confirm-rollout, confirm-promotion)
on POST {api}/v1/flagger/gate, which answers 200 for pass and 403 for block or unknown
with the reasons in the body. The viewer token (--token, else $SAFEDEPLOY_TOKEN) goes in
the URL as access_token: Flagger webhooks cannot send headers.

gitops-promoter: prints a GitOps Promoter WebRequestCommitStatus (key safedeploy-gate)
for the PromotionStrategy --strategy, polling GET {api}/v1/services/SERVICE/gate every
--interval (default 1m) with the bearer token of the Secret --secret (default
safedeploy-token): success on pass, failure on block, pending on unknown.`,
  async run(args, io) {
    // The artefact is the first argument that is not an option or an option's value.
    const at = args.findIndex(
      (arg, i) => !arg.startsWith("-") && (i === 0 || !VALUED.has(args[i - 1] ?? "")),
    );
    const name = at === -1 ? undefined : args[at];
    const rest = args.filter((_, i) => i !== at);
    const generator =
      name !== undefined && Object.hasOwn(GENERATORS, name) ? GENERATORS[name] : undefined;
    if (generator === undefined) {
      throw new UsageError(`generate needs one of: ${Object.keys(GENERATORS).join(", ")}`);
    }
    return generator.run(rest, io);
  },
};
