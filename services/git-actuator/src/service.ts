import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { gitForge, githubForge, openEnvRepo } from "@safedeploy/git";
import type { Forge, GitHubAuth } from "@safedeploy/git";
import { consumeEvents, openKv, publishEvent } from "@safedeploy/jetstream";
import { loadGitCredentials, openServiceBus } from "@safedeploy/runtime";
import type { GitCredentials, ServiceDefinition } from "@safedeploy/runtime";
import { ProposalRecord, SAFEDEPLOY_TOPOLOGY } from "@safedeploy/schema";
import { Counter } from "prom-client";
import { onActionRequested } from "./actuator.js";

type Env = Readonly<Record<string, string | undefined>>;

const consumer = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "git-actuator");
const previews = SAFEDEPLOY_TOPOLOGY.consumers.find((c) => c.durable === "git-actuator-previews");

function forgeFor(kind: "git" | "github", credentials: GitCredentials): Forge {
  if (kind === "git") return gitForge();
  const repository = credentials.githubRepository;
  if (repository === undefined)
    throw new Error("GITHUB_REPOSITORY is required with the github forge");
  let auth: GitHubAuth;
  if (credentials.githubApp !== undefined) auth = { kind: "app", ...credentials.githubApp };
  else if (typeof credentials.githubToken === "string") {
    auth = { kind: "token", token: credentials.githubToken };
  } else throw new Error("the github forge needs GITHUB_TOKEN or a GitHub App");
  return githubForge({ apiUrl: credentials.githubApiUrl, repository, auth });
}

/**
 * The git actuator: the only service that reads Git credentials (`env` is where it reads them,
 * `process.env` in production). It consumes approved actions on the `git-actuator` durable
 * consumer and turns each into a branch (and a pull request with the github forge) in the
 * environment repo, working in a private clone under `$SAFEDEPLOY_HOME/git/`.
 */
export function createGitActuatorService(options: { readonly env: Env }): ServiceDefinition {
  return {
    name: "git-actuator",
    async start(context) {
      if (consumer === undefined || previews === undefined) {
        throw new Error("the topology declares no git-actuator or git-actuator-previews consumer");
      }
      const { config } = context;
      if (config.envRepo === undefined) {
        throw new Error("SAFEDEPLOY_ENV_REPO is required by the git actuator");
      }
      const credentials = loadGitCredentials({ ...options.env, SAFEDEPLOY_FORGE: config.forge });
      const forge = forgeFor(config.forge, credentials);
      const parent = join(config.home, "git");
      // SAFEDEPLOY_HOME is the operator's directory for local state.
      // eslint-disable-next-line security/detect-non-literal-fs-filename
      await mkdir(parent, { recursive: true });
      // One clone per process: replicas sharing SAFEDEPLOY_HOME never share a work tree.
      const workDir = await mkdtemp(join(parent, "env-"));
      const log = context.log.child({ component: "git-actuator" });
      const repo = await openEnvRepo({
        remote: config.envRepo,
        baseBranch: config.envBranch,
        workDir,
        httpToken: () => forge.pushToken(),
      });
      log.info(
        { forge: forge.kind, dryRun: config.dryRun, branch: config.envBranch },
        "environment repo opened",
      );
      const bus = await openServiceBus(context);
      // Read only: what the proposal service recorded, to check each action against.
      const proposals = await openKv(bus, "proposals", ProposalRecord);
      const refusals = new Counter({
        name: "safedeploy_actuator_refused_total",
        help: "Action requests refused (dead-lettered, nothing pushed), by reason",
        labelNames: ["reason"],
        registers: [context.registry],
      });
      const handle = onActionRequested({
        proposalOf: async (proposalId) => (await proposals.get(proposalId))?.value ?? null,
        refused: (code) => {
          refusals.inc({ reason: code });
        },
        repo,
        forge,
        publish: (envelope) => publishEvent(bus, envelope),
        now: () => new Date().toISOString(),
        dryRun: config.dryRun,
        log,
      });
      // Approved actions and previews on durables of their own: a preview is never an action.
      const subscriptions = [
        consumeEvents(bus, { consumer, types: ["governance.action-requested"], handler: handle }),
        consumeEvents(bus, {
          consumer: previews,
          types: ["governance.preview-requested"],
          handler: handle,
        }),
      ];
      return {
        stop: async () => {
          await Promise.all(subscriptions.map((subscription) => subscription.stop()));
          await bus.close();
          await rm(workDir, { recursive: true, force: true });
        },
      };
    },
  };
}
