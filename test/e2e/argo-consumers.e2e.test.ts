// The gate as Argo Rollouts, Flagger and GitOps Promoter consume it, against the real gateway
// and policy service: `safedeploy generate argo-analysis|flagger-gate|gitops-promoter` print
// the artefacts, which are validated (the AnalysisTemplate against the Argo Rollouts CRD schema)
// and then exercised as the tools would call them, with the payload Flagger sends.
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1";
import { runCli } from "@safedeploy/cli";
import { publishEvent } from "@safedeploy/jetstream";
import { budgetEvaluationEvent, waitUntil } from "@safedeploy/testing";
import type { FastifyInstance } from "fastify";
import { TOKENS, startControlPlane } from "./gateway-harness.js";
import type { ControlPlane } from "./gateway-harness.js";

const FIXTURES = new URL("../fixtures/argo/", import.meta.url).pathname;
let ctl: ControlPlane;
let url: string;

const fixture = async (name: string) =>
  JSON.parse(await readFile(`${FIXTURES}${name}`, "utf8")) as Record<string, unknown>;

async function generate(...argv: string[]): Promise<string> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv: ["generate", ...argv],
    env: { SAFEDEPLOY_API: url, SAFEDEPLOY_TOKEN: TOKENS.viewer },
    cwd: process.cwd(),
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  expect(code, stderr).toBe(0);
  return stdout;
}

/** Fresh evidence for `service` (now), and waits until the gate shows its verdict. */
async function evidence(service: string, severity: "normal" | "fast-burn") {
  const now = new Date().toISOString();
  await publishEvent(
    ctl.harness.bus,
    budgetEvaluationEvent(service, now, severity, severity === "normal" ? {} : { burn1h: 20 }),
  );
  const expected = severity === "normal" ? "pass" : "block";
  let last = "";
  await waitUntil(
    async () => {
      const gate = await ctl.send("gate.query", { service });
      last = JSON.stringify(gate);
      return gate.ok && gate.result.verdict === expected;
    },
    10_000,
    () => `${service}'s gate is not ${expected} on evidence of ${now}: ${last}`,
  );
}

const flagger = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  ctl = await startControlPlane();
  url = await ctl.app.listen({ host: "127.0.0.1", port: 0 });
}, 60_000);

afterAll(async () => {
  await ctl.stop();
});

describe("Flagger webhook gate", () => {
  const path = `/v1/flagger/gate?access_token=${TOKENS.viewer}`;

  it("answers 200 for pass and 403 with the reasons for block, from Flagger's own payload", async () => {
    const hook = await fixture("flagger-confirm-promotion.json");
    await evidence("checkout", "normal");
    const pass = await flagger(path, hook);
    expect(pass.status).toBe(200);
    expect(await pass.json()).toMatchObject({
      service: "checkout",
      allowed: true,
      verdict: "pass",
    });

    await evidence("checkout", "fast-burn");
    const blocked = await flagger(path, hook);
    expect(blocked.status).toBe(403);
    const body = (await blocked.json()) as { verdict: string; message: string; reasons: unknown[] };
    expect(body.verdict).toBe("block");
    expect(body.reasons.length).toBeGreaterThan(0);
    expect(body.message).toMatch(/^checkout block: /);
    await evidence("checkout", "normal");
  });

  it("fails closed: unknown service, a policy service that does not answer, no token", async () => {
    const unknown = await flagger(path, await fixture("flagger-confirm-rollout-unknown.json"));
    expect(unknown.status).toBe(403);
    expect(await unknown.json()).toMatchObject({ verdict: "unknown", allowed: false });
    // `legacy` breaks the policy: blocked, named through metadata.service.
    const legacy = await flagger(path, {
      name: "legacy-canary",
      namespace: "shop",
      metadata: { service: "legacy" },
    });
    expect(legacy.status).toBe(403);

    const silent: FastifyInstance = await ctl.gateway({
      sendCommand: () =>
        Promise.reject(Object.assign(new Error("no responders"), { code: "unavailable" })),
    });
    const answer = await silent.inject({
      method: "POST",
      url: path,
      payload: await fixture("flagger-confirm-promotion.json"),
    });
    expect(answer.statusCode).toBe(403);
    expect(answer.json()).toMatchObject({
      verdict: "unknown",
      message: expect.stringContaining("policy") as unknown,
    });

    expect(
      (await flagger("/v1/flagger/gate", await fixture("flagger-confirm-promotion.json"))).status,
    ).toBe(401);
    const header = await flagger(
      "/v1/flagger/gate",
      await fixture("flagger-confirm-promotion.json"),
      {
        authorization: `Bearer ${TOKENS.viewer}`,
      },
    );
    expect(header.status).toBe(200);
    expect(
      (
        await flagger(
          "/v1/flagger/gate?access_token=nope",
          await fixture("flagger-confirm-promotion.json"),
        )
      ).status,
    ).toBe(401);
  });
});

describe("generated gate consumers, exercised against the real gate", () => {
  it("argo-analysis: a valid AnalysisTemplate whose web metric reads pass as Successful", async () => {
    const doc = parse(await generate("argo-analysis", "checkout")) as ConstructorParameters<
      typeof AnalysisTemplate
    >[0];
    const template = new AnalysisTemplate(doc);
    template.validate(); // throws on anything the CRD's OpenAPI schema refuses
    const [metric] = template.spec.metrics ?? [];
    const web = metric?.provider.web;
    expect(web?.jsonPath).toBe("{$.verdict}");
    const headers = Object.fromEntries(
      (web?.headers ?? []).map((h) => [
        h.key,
        h.value.replace("{{args.safedeploy-token}}", TOKENS.viewer),
      ]),
    );
    await evidence("checkout", "normal");
    const response = await fetch(web?.url ?? "", { headers });
    expect(response.status).toBe(200);
    const result = ((await response.json()) as { verdict: string }).verdict;
    // successCondition `result == "pass"`, failureCondition `result == "block"`.
    expect(metric?.successCondition).toBe('result == "pass"');
    expect(metric?.failureCondition).toBe('result == "block"');
    expect(result).toBe("pass");
  });

  it("flagger-gate: webhooks Flagger can call, each answering 200 on pass", async () => {
    interface Webhook {
      name: string;
      type: string;
      url: string;
      timeout: string;
      metadata: Record<string, string>;
    }
    const doc = parse(await generate("flagger-gate", "checkout")) as {
      analysis: { webhooks: Webhook[] };
    };
    // Flagger's CanaryWebhook fields only, with the types its CRD declares.
    expect(doc.analysis.webhooks.map((h) => h.type)).toEqual([
      "confirm-rollout",
      "confirm-promotion",
    ]);
    for (const hook of doc.analysis.webhooks) {
      expect(Object.keys(hook).sort()).toEqual(["metadata", "name", "timeout", "type", "url"]);
      expect(hook.timeout).toMatch(/^\d+s$/);
      expect(new URL(hook.url).pathname).toBe("/v1/flagger/gate");
    }
    await evidence("checkout", "normal");
    for (const hook of doc.analysis.webhooks) {
      const answer = await fetch(hook.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name: "checkout",
          namespace: "shop",
          phase: "Progressing",
          metadata: hook.metadata,
        }),
      });
      expect(answer.status, hook.type).toBe(200);
    }
  });

  it("gitops-promoter: a WebRequestCommitStatus whose request gets the verdict", async () => {
    interface Wrcs {
      apiVersion: string;
      kind: string;
      spec: {
        promotionStrategyRef: { name: string };
        key: string;
        reportOn: string;
        httpRequest: {
          urlTemplate: string;
          methodTemplate: string;
          timeout: string;
          authentication: { bearer: { secretRef: { name: string } } };
        };
        success: { when: { expression: string } };
        mode: { polling: { interval: string } };
      };
    }
    const doc = parse(await generate("gitops-promoter", "checkout", "--strategy", "shop")) as Wrcs;
    expect(doc).toMatchObject({
      apiVersion: "promoter.argoproj.io/v1alpha1",
      kind: "WebRequestCommitStatus",
      spec: {
        promotionStrategyRef: { name: "shop" },
        key: "safedeploy-gate",
        reportOn: "proposed",
        httpRequest: {
          methodTemplate: "GET",
          authentication: { bearer: { secretRef: { name: "safedeploy-token" } } },
        },
        mode: { polling: { interval: "1m" } },
      },
    });
    // Only fields of the WebRequestCommitStatus spec (api/v1alpha1/webrequestcommitstatus_types.go).
    expect(Object.keys(doc.spec).sort()).toEqual([
      "descriptionTemplate",
      "httpRequest",
      "key",
      "mode",
      "promotionStrategyRef",
      "reportOn",
      "success",
      "urlTemplate",
    ]);
    for (const verdict of ["pass", "block"])
      expect(doc.spec.success.when.expression).toContain(`"${verdict}"`);
    expect(doc.spec.success.when.expression).toContain("Response == nil ? { phase: Phase }");
    await evidence("checkout", "normal");
    const response = await fetch(doc.spec.httpRequest.urlTemplate, {
      headers: { authorization: `Bearer ${TOKENS.viewer}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ verdict: "pass" });
  });
});
