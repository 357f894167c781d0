// Catalog documents as tests write them: one Service shape (an availability SLO over the
// exporters' `http_requests_total{service,code}`, a git-revert rollback of envs/prod/<name>) and
// a Policy, so each test says only what differs.

/** How a test Service's SLI reads the counters: per-second rates, or increases summed by code. */
export type TestSli = "rate" | "increase";

export interface TestServiceOptions {
  readonly objective?: number;
  /** The SLO window; absent: the catalog's default. */
  readonly window?: string;
  readonly sli?: TestSli;
  /** More `spec` lines (indented two spaces), e.g. a `deployment:` block. */
  readonly spec?: string;
}

function sliQueries(name: string, sli: TestSli): { error: string; total: string } {
  const errors = `http_requests_total{service="${name}",code=~"5.."}[{{.window}}]`;
  const all = `http_requests_total{service="${name}"}[{{.window}}]`;
  return sli === "rate"
    ? { error: `sum(rate(${errors}))`, total: `sum(rate(${all}))` }
    : { error: `sum by (code) (increase(${errors}))`, total: `sum(increase(${all}))` };
}

/** A `kind: Service` document owned by `team-<name>`. */
export function serviceYaml(name: string, options: TestServiceOptions = {}): string {
  const { error, total } = sliQueries(name, options.sli ?? "increase");
  return `apiVersion: safedeploy.dev/v1
kind: Service
metadata: { name: ${name}, owner: team-${name} }
spec:
  slos:
    - name: availability
      objective: ${options.objective ?? 99}
${options.window === undefined ? "" : `      window: ${options.window}\n`}      sli:
        errorQuery: ${error}
        totalQuery: ${total}
  rollback: { strategy: git-revert, path: envs/prod/${name} }
${options.spec ?? ""}`;
}

/** The `default` Policy with these `spec` lines (indented two spaces). */
export function policyYaml(spec: string): string {
  return `apiVersion: safedeploy.dev/v1
kind: Policy
metadata: { name: default }
spec:
${spec}`;
}

/** Documents as one multi-document YAML file. */
export function yamlDocuments(documents: readonly string[]): string {
  return documents.join("---\n");
}
