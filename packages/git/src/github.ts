import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { ForgeError } from "./errors.js";
import type { Forge, ForgeChange, ForgeReview } from "./forge.js";

/** How the GitHub forge authenticates: a token, or a GitHub App installation (short-lived tokens). */
export type GitHubAuth =
  | { readonly kind: "token"; readonly token: string }
  | {
      readonly kind: "app";
      readonly appId: string;
      /** PEM text of the App's private key. */
      readonly privateKey: string;
      readonly installationId: string;
    };

/** Options of {@link githubForge}. */
export interface GitHubForgeOptions {
  /** API base, `GITHUB_API_URL` (https://api.github.com, or GHES `https://host/api/v3`). */
  readonly apiUrl: string;
  /** `owner/name` of the environment repo, `GITHUB_REPOSITORY`. */
  readonly repository: string;
  readonly auth: GitHubAuth;
  /** Injected fetch (tests, proxies); default the global one. */
  readonly fetch?: typeof fetch;
}

const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

interface ResponseLike {
  readonly status?: number;
  readonly headers?: Record<string, string | number | undefined>;
}

function headerOf(
  error: ResponseLike & { response?: ResponseLike },
  name: string,
): string | undefined {
  const value = error.response?.headers?.[name];
  return value === undefined ? undefined : String(value);
}

/**
 * Maps an Octokit failure to a {@link ForgeError}: no response, 5xx, 429 and 403 rate limits are
 * retryable (with the wait GitHub asked for, when it said); every other 4xx is terminal.
 */
export function classifyForgeError(error: unknown, what: string, now = Date.now()): ForgeError {
  const e = (typeof error === "object" && error !== null ? error : {}) as ResponseLike & {
    response?: ResponseLike;
    message?: string;
  };
  const status = typeof e.status === "number" ? e.status : undefined;
  const retryAfter = headerOf(e, "retry-after");
  const remaining = headerOf(e, "x-ratelimit-remaining");
  const reset = headerOf(e, "x-ratelimit-reset");
  const message = typeof e.message === "string" ? e.message : "";
  // 403 is a rate limit when GitHub says so: Retry-After, no requests left, or a secondary limit.
  const rateLimited =
    status === 429 ||
    (status === 403 &&
      (retryAfter !== undefined || remaining === "0" || /rate limit/i.test(message)));
  let retryAfterMs: number | undefined;
  if (retryAfter !== undefined && Number.isFinite(Number(retryAfter))) {
    retryAfterMs = Number(retryAfter) * 1_000;
  } else if (rateLimited && reset !== undefined && Number.isFinite(Number(reset))) {
    retryAfterMs = Math.max(0, Number(reset) * 1_000 - now);
  }
  const retryable = status === undefined || status >= 500 || rateLimited;
  const reason = message === "" ? String(error) : message.split("\n")[0];
  const label = rateLimited
    ? "rate limited"
    : status === undefined
      ? "no response"
      : String(status);
  return new ForgeError(
    `GitHub ${what} failed (${label}): ${reason ?? ""}`,
    { status, retryable, retryAfterMs },
    { cause: error },
  );
}

/**
 * The GitHub forge (`@octokit/rest`): opens one pull request per branch, reusing an open one for
 * the same head branch, and labels it. Authenticates with a token or as a GitHub App installation
 * (`@octokit/auth-app` mints and renews the one-hour installation token itself).
 */
export function githubForge(options: GitHubForgeOptions): Forge {
  const [owner, repo] = options.repository.split("/");
  if (owner === undefined || repo === undefined || owner === "" || repo === "") {
    throw new ForgeError(`GITHUB_REPOSITORY must be owner/name`, {
      status: undefined,
      retryable: false,
    });
  }
  const common = {
    baseUrl: options.apiUrl.replace(/\/+$/, ""),
    userAgent: "safedeploy-git-actuator",
    log: silent,
    request: options.fetch === undefined ? {} : { fetch: options.fetch },
  };
  const octokit =
    options.auth.kind === "token"
      ? new Octokit({ ...common, auth: options.auth.token })
      : new Octokit({
          ...common,
          authStrategy: createAppAuth,
          auth: {
            appId: options.auth.appId,
            privateKey: options.auth.privateKey,
            installationId: options.auth.installationId,
          },
        });

  const call = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw classifyForgeError(error, what);
    }
  };

  const findOpen = async (
    branch: string,
  ): Promise<{ number: number; html_url: string } | undefined> => {
    const { data } = await call(`GET /repos/${owner}/${repo}/pulls`, () =>
      octokit.rest.pulls.list({
        owner,
        repo,
        head: `${owner}:${branch}`,
        state: "open",
        per_page: 10,
      }),
    );
    return data[0];
  };

  return {
    kind: "github",
    async openChange(change: ForgeChange): Promise<ForgeReview> {
      let pull = await findOpen(change.branch);
      let reused = pull !== undefined;
      if (pull === undefined) {
        try {
          const { data } = await octokit.rest.pulls.create({
            owner,
            repo,
            head: change.branch,
            base: change.baseBranch,
            title: change.title,
            body: change.body,
            maintainer_can_modify: false,
          });
          pull = data;
        } catch (error) {
          const failure = classifyForgeError(error, `POST /repos/${owner}/${repo}/pulls`);
          // 422 "A pull request already exists": another replica won the race; reuse its PR.
          if (failure.status !== 422) throw failure;
          pull = await findOpen(change.branch);
          if (pull === undefined) throw failure;
          reused = true;
        }
      }
      const number = pull.number;
      await call(`POST /repos/${owner}/${repo}/issues/${number}/labels`, () =>
        octokit.rest.issues.addLabels({
          owner,
          repo,
          issue_number: number,
          labels: [...change.labels],
        }),
      );
      return { prUrl: pull.html_url, number, reused };
    },
    async pushToken(): Promise<string | undefined> {
      const auth = (await call("authentication", () => octokit.auth({ type: "installation" }))) as {
        token?: string;
      };
      return auth.token;
    },
  };
}
