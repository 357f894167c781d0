import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/**
 * Runs `git` in `cwd` as a fixed test identity, away from the machine's global and system
 * config, optionally at a fixed date; resolves its trimmed standard output.
 */
export async function git(cwd: string, args: readonly string[], date?: string): Promise<string> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    GIT_AUTHOR_NAME: "Dev",
    GIT_AUTHOR_EMAIL: "dev@example.com",
    GIT_COMMITTER_NAME: "Dev",
    GIT_COMMITTER_EMAIL: "dev@example.com",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
  };
  if (date !== undefined) {
    env.GIT_AUTHOR_DATE = date;
    env.GIT_COMMITTER_DATE = date;
  }
  const { stdout } = await exec("git", [...args], { cwd, env });
  return stdout.trim();
}

/** A test's environment repository: a bare "remote" on `main` and a clone to commit from. */
export interface TestEnvRepo {
  /** A temporary directory holding both; free for the test's other files. */
  readonly root: string;
  /** The bare repository, what `SAFEDEPLOY_ENV_REPO` points at. */
  readonly remote: string;
  /** Writes the files under the clone, commits them on main and pushes; resolves the sha. */
  commit(message: string, files: Readonly<Record<string, string>>, date?: string): Promise<string>;
  /** The remote's branches under `prefix` (default `safedeploy/`), name → head sha. */
  branches(prefix?: string): Promise<Record<string, string>>;
  /** Removes the directory. */
  dispose(): Promise<void>;
}

/** Creates a bare remote with an empty `main` and a clone of it in a fresh temporary directory. */
export async function createTestEnvRepo(name = "env"): Promise<TestEnvRepo> {
  const root = await mkdtemp(join(tmpdir(), `sd-${name}-`));
  const remote = join(root, `${name}.git`);
  const seed = join(root, "seed");
  await git(root, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  await git(root, ["clone", "--quiet", remote, seed]);
  await git(seed, ["checkout", "--quiet", "-B", "main"]);
  return {
    root,
    remote,
    async commit(message, files, date) {
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(seed, path)), { recursive: true });
        await writeFile(join(seed, path), text);
      }
      await git(seed, ["add", "--all"], date);
      await git(seed, ["commit", "--quiet", "-m", message], date);
      await git(seed, ["push", "--quiet", "origin", "main"]);
      return git(seed, ["rev-parse", "HEAD"]);
    },
    async branches(prefix = "safedeploy/") {
      const text = await git(remote, [
        "for-each-ref",
        "--format=%(refname:short) %(objectname)",
        `refs/heads/${prefix}`,
      ]);
      return Object.fromEntries(
        text
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => line.split(" ") as [string, string]),
      );
    },
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

/** A Kubernetes Deployment of `service` running `shop/<service>:<tag>`, as release-train tests use. */
export function deploymentManifest(service: string, tag: string): string {
  return `# ${service}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${service}\nspec:\n  template:\n    spec:\n      containers:\n        - name: ${service}\n          image: shop/${service}:${tag}\n`;
}
