import type { z } from "zod";

/** A valid SLO, for tests to vary one field at a time. */
export const slo = {
  name: "availability",
  objective: 99.9,
  sli: { errorQuery: "sum(rate(e[{{.window}}]))", totalQuery: "sum(rate(t[{{ .window }}]))" },
};

/** A valid Service document with `spec` fields replaced or added. */
export const service = (spec: Record<string, unknown> = {}) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "Service",
  metadata: { name: "checkout", owner: "team-payments" },
  spec: { slos: [slo], ...spec },
});

/** A valid ReleaseTrain document with the given steps and `spec` fields. */
export const train = (steps: unknown[], spec: Record<string, unknown> = {}) => ({
  apiVersion: "safedeploy.dev/v1",
  kind: "ReleaseTrain",
  metadata: { name: "train-42" },
  spec: { steps, ...spec },
});

/** `path: message` for every issue, `path` dotted, in the order zod found them; [] when valid. */
export function issues(schema: z.ZodType, value: unknown): string[] {
  const result = schema.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map((issue) => {
    const keys = issue.code === "unrecognized_keys" ? ` (${issue.keys.join(", ")})` : "";
    return `${issue.path.map(String).join(".")}: ${issue.message}${keys}`;
  });
}
