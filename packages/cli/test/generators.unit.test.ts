import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runCli } from "@safedeploy/cli";

async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

interface Template {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    args: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[];
    metrics: {
      name: string;
      successCondition: string;
      failureCondition: string;
      provider: {
        web: {
          url: string;
          method: string;
          jsonPath: string;
          headers: { key: string; value: string }[];
        };
      };
    }[];
  };
}

describe("safedeploy generate argo-analysis", () => {
  it("prints an AnalysisTemplate whose web metric asks the gate, token from a Secret", async () => {
    const result = await run([
      "generate",
      "argo-analysis",
      "checkout",
      "--api",
      "https://sd.example.com/",
    ]);
    expect(result.code).toBe(0);
    const template = parse(result.stdout) as Template;
    expect(template).toMatchObject({
      apiVersion: "argoproj.io/v1alpha1",
      kind: "AnalysisTemplate",
      metadata: { name: "safedeploy-gate-checkout" },
    });
    expect(template.spec.args).toEqual([
      {
        name: "safedeploy-token",
        valueFrom: { secretKeyRef: { name: "safedeploy-token", key: "token" } },
      },
    ]);
    const [metric] = template.spec.metrics;
    // pass succeeds, block fails, anything else (unknown) is Inconclusive: the rollout pauses.
    expect(metric?.successCondition).toBe('result == "pass"');
    expect(metric?.failureCondition).toBe('result == "block"');
    expect(metric?.provider.web).toMatchObject({
      method: "GET",
      url: "https://sd.example.com/v1/services/checkout/gate",
      jsonPath: "{$.verdict}",
      headers: [{ key: "Authorization", value: "Bearer {{args.safedeploy-token}}" }],
    });
  });

  it("takes the API from SAFEDEPLOY_API, a Secret name and an interval", async () => {
    const result = await run(
      ["generate", "--secret", "sd-viewer", "argo-analysis", "cart", "--interval", "1m"],
      { SAFEDEPLOY_API: "http://gateway:8080" },
    );
    expect(result.code).toBe(0);
    const template = parse(result.stdout) as Template;
    expect(template.spec.metrics[0]?.provider.web.url).toBe(
      "http://gateway:8080/v1/services/cart/gate",
    );
    expect(template.spec.args[0]?.valueFrom.secretKeyRef.name).toBe("sd-viewer");
    expect(result.stdout).toContain("interval: 1m");
  });

  it.each([
    [["generate", "argo-analysis"]],
    [["generate", "argo-analysis", "Not_A_Name"]],
    [["generate", "argo-analysis", "a", "b"]],
    [["generate", "argo-analysis", "a", "--api", "ftp://x"]],
    [["generate", "argo-analysis", "a", "--api", "not a url"]],
    [["generate", "argo-analysis", "a", "--secret", "Bad_Secret"]],
    [["generate", "argo-analysis", "a", "--interval", "soon"]],
    [["generate", "frobnicate"]],
    [["generate"]],
  ])("exit 2 for %j", async (argv) => {
    expect((await run(argv)).code).toBe(2);
  });
});

describe("safedeploy generate ci-gate", () => {
  it("prints a GitHub Actions step that fails the job when the gate blocks", async () => {
    const result = await run([
      "generate",
      "ci-gate",
      "--service",
      "checkout",
      "--api",
      "https://sd.example.com",
    ]);
    expect(result.code).toBe(0);
    const steps = parse(result.stdout) as {
      name: string;
      shell: string;
      env: Record<string, string>;
      run: string;
    }[];
    expect(steps).toHaveLength(1);
    const [step] = steps;
    expect(step?.name).toBe("SafeDeploy gate (checkout)");
    expect(step?.env).toEqual({
      SAFEDEPLOY_API: "https://sd.example.com",
      SAFEDEPLOY_TOKEN: "${{ secrets.SAFEDEPLOY_TOKEN }}",
      SERVICE: "checkout",
    });
    expect(step?.run).toContain('safedeploy gate "$SERVICE"');
    expect(step?.run).toContain('"$SAFEDEPLOY_API/v1/services/$SERVICE/gate"');
    expect(step?.run).toContain(`jq -e '.verdict == "pass"'`);
    expect(step?.run).toContain("exit 1");
  });

  it("without --service reads the job's SAFEDEPLOY_SERVICE", async () => {
    const result = await run(["generate", "ci-gate"]);
    const [step] = parse(result.stdout) as { env: Record<string, string> }[];
    expect(step?.env.SERVICE).toBe("${{ env.SAFEDEPLOY_SERVICE }}");
    expect(step?.env.SAFEDEPLOY_API).toBe("http://127.0.0.1:8080");
    expect((await run(["generate", "ci-gate", "extra"])).code).toBe(2);
    expect((await run(["generate", "ci-gate", "--service", "Bad Name"])).code).toBe(2);
  });

  it("nats-permissions still works with its options before the artefact", async () => {
    const result = await run(["generate", "--root", "sd", "nats-permissions"]);
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBeGreaterThan(100);
  });
});
