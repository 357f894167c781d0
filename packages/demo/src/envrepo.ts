import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { DEMO_ROLLBACK_PATH, DEMO_SERVICE } from "./catalog.js";

const exec = promisify(execFile);

/** Runs git in `cwd` as the demo's release engineer, ignoring the machine's git config. */
export async function git(cwd: string, args: readonly string[]): Promise<string> {
  const { stdout } = await exec("git", [...args], {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Demo Release Bot",
      GIT_AUTHOR_EMAIL: "release-bot@demo.invalid",
      GIT_COMMITTER_NAME: "Demo Release Bot",
      GIT_COMMITTER_EMAIL: "release-bot@demo.invalid",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
    },
  });
  return stdout.trim();
}

/** An Argo Rollouts canary manifest of `service` running `image`, gated by SafeDeploy's analysis. */
export function rolloutManifest(service: string, image: string): string {
  return `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: ${service}
  labels: { app: ${service} }
spec:
  replicas: 4
  selector:
    matchLabels: { app: ${service} }
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: { duration: 30s }
        - analysis:
            templates: [ { templateName: safedeploy-gate } ]
        - setWeight: 50
        - pause: { duration: 30s }
        - setWeight: 100
  template:
    metadata:
      labels: { app: ${service} }
    spec:
      containers:
        - name: ${service}
          image: "${image}"
          ports: [ { containerPort: 8080 } ]
`;
}

/** The Argo Rollouts manifest of the demo's checkout service at `version`. */
export function checkoutRollout(version: string): string {
  return `# checkout, owned by team-payments; synced by Argo CD, rolled out by Argo Rollouts
${rolloutManifest(DEMO_SERVICE, `registry.example.com/shop/${DEMO_SERVICE}:${version}`)}`;
}

const GATE_TEMPLATE = `# Argo Rollouts asks SafeDeploy whether checkout may be promoted
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: safedeploy-gate
spec:
  metrics:
    - name: safedeploy-gate
      interval: 30s
      successCondition: result.allowed == true
      provider:
        web:
          url: http://safedeploy.internal/v1/services/${DEMO_SERVICE}/gate
          jsonPath: "{$}"
`;

/** A local environment repo: a bare remote (what SAFEDEPLOY_ENV_REPO points at) and a work clone. */
export interface DemoEnvRepo {
  /** The bare repository: SAFEDEPLOY_ENV_REPO. */
  readonly remote: string;
  /** The release engineer's clone. */
  readonly work: string;
  /** The manifest path of checkout's rollout, relative to the repo root. */
  readonly rolloutPath: string;
  /** Commits and pushes checkout at `version` on main; returns the commit sha. */
  deploy(version: string, message?: string): Promise<string>;
  /** `git log --oneline` of a ref in the remote (default main). */
  log(ref?: string): Promise<string>;
  /** Branch names of the remote. */
  branches(): Promise<string[]>;
}

/**
 * Creates (or reopens) the demo environment repo under `dir`: `dir/env.git` bare with `main`, and
 * `dir/work` a clone. A new repo gets a history: the initial environment (a README, the gate
 * AnalysisTemplate and checkout's Rollout at v1). Reopening keeps what is there.
 */
export async function createDemoEnvRepo(dir: string): Promise<DemoEnvRepo> {
  const remote = join(dir, "env.git");
  const work = join(dir, "work");
  const rolloutPath = `${DEMO_ROLLBACK_PATH}/rollout.yaml`;
  await mkdir(dir, { recursive: true });
  let fresh = false;
  try {
    await git(remote, ["rev-parse", "--verify", "main"]);
  } catch {
    fresh = true;
    await git(dir, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  }
  try {
    await git(work, ["rev-parse", "--git-dir"]);
  } catch {
    await git(dir, ["clone", "--quiet", remote, work]);
  }
  const commit = async (message: string, files: Readonly<Record<string, string>>) => {
    for (const [path, text] of Object.entries(files)) {
      const full = join(work, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, text);
    }
    await git(work, ["add", "--all"]);
    await git(work, ["commit", "--quiet", "--allow-empty", "-m", message]);
    await git(work, ["push", "--quiet", "origin", "HEAD:main"]);
    return git(work, ["rev-parse", "HEAD"]);
  };
  if (fresh) {
    await git(work, ["checkout", "--quiet", "-B", "main"]);
    await commit("Initial environment: checkout v1 behind the SafeDeploy gate", {
      "README.md": "# Environment repo (SafeDeploy demo)\n\nArgo CD syncs `envs/prod`.\n",
      "envs/prod/analysis/safedeploy-gate.yaml": GATE_TEMPLATE,
      [rolloutPath]: checkoutRollout("v1"),
    });
  } else {
    await git(work, ["fetch", "--quiet", "origin"]);
    await git(work, ["checkout", "--quiet", "-B", "main", "origin/main"]);
  }
  return {
    remote,
    work,
    rolloutPath,
    deploy: (version, message) =>
      commit(message ?? `Deploy checkout ${version}`, { [rolloutPath]: checkoutRollout(version) }),
    log: (ref = "main") => git(remote, ["log", "--oneline", ref]),
    branches: async () =>
      (await git(remote, ["for-each-ref", "--format=%(refname:short)", "refs/heads"]))
        .split("\n")
        .filter((line) => line !== ""),
  };
}
