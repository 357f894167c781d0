import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { git } from "@safedeploy/testing";

export { git };

export const rollout = (
  name: string,
  image: string,
  weight = 10,
) => `# ${name} rollout, owned by team-payments
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: ${name}   # the service
  labels: { app: ${name}, tier: "web" }
spec:
  replicas: 4
  strategy:
    canary:
      # steps are walked in order
      steps:
        - pause: { duration: 1m }
        - setWeight: ${weight}    # first step
        - pause: { duration: 10m }
        - setWeight: 50
        - pause: {}
  template:
    spec:
      containers:
        - name: ${name}
          image: "registry.example.com/shop/${name}:${image}"  # pinned
          ports: [ { containerPort: 8080 } ]
`;

export const paymentsFile = (image: string, weight = 10) => `---
# the service in front of the rollout
apiVersion: v1
kind: Service
metadata:
  name: payments
spec:
  ports:
    - port: 80
---
${rollout("payments", image, weight)}`;

/** A bare "remote" environment repo and a seed clone with a realistic history. */
export interface EnvRemote {
  readonly root: string;
  readonly remote: string;
  readonly seed: string;
  /** Commit shas by name: root, checkout15, release (touches both services), docs. */
  readonly commits: Record<string, string>;
  /** Writes files in the seed, commits with the given date and pushes main. */
  commit(message: string, files: Record<string, string | null>, date: string): Promise<string>;
  /** refs/heads/* of the remote: name → sha. */
  refs(): Promise<Record<string, string>>;
  workDir(name: string): string;
  cleanup(): Promise<void>;
}

export async function createEnvRemote(): Promise<EnvRemote> {
  const root = await mkdtemp(join(tmpdir(), "sd-git-"));
  const remote = join(root, "env.git");
  const seed = join(root, "seed");
  await git(root, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  await git(root, ["clone", "--quiet", remote, seed]);
  await git(seed, ["checkout", "--quiet", "-B", "main"]);
  const commit = async (message: string, files: Record<string, string | null>, date: string) => {
    for (const [path, text] of Object.entries(files)) {
      const full = join(seed, path);
      if (text === null) {
        await rm(full, { force: true });
      } else {
        await mkdir(dirname(full), { recursive: true });
        await writeFile(full, text);
      }
    }
    await git(seed, ["add", "--all"]);
    await git(seed, ["commit", "--quiet", "-m", message], date);
    await git(seed, ["push", "--quiet", "origin", "main"]);
    return git(seed, ["rev-parse", "HEAD"]);
  };
  const commits: Record<string, string> = {};
  commits.root = await commit(
    "Initial environment",
    {
      "README.md": "# environment\n",
      "envs/prod/checkout/rollout.yaml": rollout("checkout", "v1.4.0"),
      "envs/prod/payments/rollout.yaml": paymentsFile("v2.0.0"),
    },
    "2026-11-01T10:00:00Z",
  );
  commits.checkout15 = await commit(
    "checkout v1.5.0",
    { "envs/prod/checkout/rollout.yaml": rollout("checkout", "v1.5.0") },
    "2026-11-02T10:00:00Z",
  );
  commits.release = await commit(
    "Release: checkout v1.6.0, payments v2.1.0",
    {
      "envs/prod/checkout/rollout.yaml": rollout("checkout", "v1.6.0"),
      "envs/prod/payments/rollout.yaml": paymentsFile("v2.1.0"),
    },
    "2026-11-03T10:00:00Z",
  );
  commits.docs = await commit(
    "Docs",
    { "README.md": "# environment\n\nManaged by Argo CD.\n" },
    "2026-11-04T10:00:00Z",
  );
  return {
    root,
    remote,
    seed,
    commits,
    commit,
    refs: async () => {
      const text = await git(remote, [
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/heads",
      ]);
      return Object.fromEntries(
        text
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => line.split(" ") as [string, string]),
      );
    },
    workDir: (name) => join(root, "work", name),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
