// deploy/kubernetes: every overlay renders with `kubectl kustomize` after the commands of
// docs/kubernetes.md ("Install on Kubernetes"), every object is valid against its schema, and the
// properties the issue asks for hold: one non-root, probed Deployment per service, each with its
// own ServiceAccount and NATS user, the Git credentials in the git actuator's pod alone, only the
// gateway reachable from outside the namespace, PodDisruptionBudgets where replicas > 1.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEFAULT_NAMESPACE, SERVICE_USERS, natsPermissionsConfig } from "@safedeploy/schema";
import {
  KUBERNETES_DIR,
  REPO,
  containersOf,
  copyKubernetesDir,
  kustomize,
  podSpecOf,
  requireKubectl,
  safedeploy,
  schemaProblems,
  secretsReferencedBy,
  unhashed,
} from "./render.js";
import type { KubeObject, PodSpec, Probe } from "./render.js";

/** The commands of "Install on Kubernetes", per overlay, run from the repository root. */
const INSTALL = {
  dev: [["kubernetes-secrets", "--out", "deploy/kubernetes/overlays/dev/secrets"]],
  prod: [
    [
      "kubernetes-secrets",
      "--out",
      "deploy/kubernetes/overlays/prod/secrets",
      "--nats",
      "nats://nats.nats.svc:4222",
      "--postgres",
      "postgres://db.example.internal:5432/safedeploy?sslmode=require",
    ],
  ],
} as const;
type Overlay = keyof typeof INSTALL;
const OVERLAYS = Object.keys(INSTALL) as Overlay[];

const GIT_SECRET = "safedeploy-git-credentials";
const rendered = {} as Record<Overlay, KubeObject[]>;
let root = "";

beforeAll(async () => {
  await requireKubectl();
  root = await copyKubernetesDir();
  for (const overlay of OVERLAYS) {
    for (const args of INSTALL[overlay]) {
      const result = await safedeploy(root, args);
      expect(result.code, result.stderr).toBe(0);
    }
    rendered[overlay] = await kustomize(root, `deploy/kubernetes/overlays/${overlay}`);
  }
}, 120_000);

afterAll(async () => {
  if (root !== "") await rm(root, { recursive: true, force: true });
});

const workloads = (overlay: Overlay) =>
  rendered[overlay].flatMap((object) => {
    const pod = podSpecOf(object);
    return pod === undefined ? [] : [{ object, pod }];
  });
const deployments = (overlay: Overlay) =>
  workloads(overlay).filter(({ object }) => object.kind === "Deployment");
const ofKind = (overlay: Overlay, kind: string) =>
  rendered[overlay].filter((object) => object.kind === kind);

describe.each(OVERLAYS)("overlay %s", (overlay) => {
  it("renders objects that are all valid against the Kubernetes and CRD schemas", () => {
    expect(rendered[overlay].length).toBeGreaterThan(30);
    expect(rendered[overlay].flatMap(schemaProblems)).toEqual([]);
  });

  it("puts everything in the safedeploy namespace", () => {
    const namespaced = rendered[overlay].filter((object) => object.kind !== "Namespace");
    expect(namespaced.filter((object) => object.metadata.namespace !== "safedeploy")).toEqual([]);
    expect(ofKind(overlay, "Namespace").map((object) => object.metadata.name)).toEqual([
      "safedeploy",
    ]);
  });

  it("runs one Deployment per service, each as its own ServiceAccount", () => {
    const names = deployments(overlay)
      .map(({ object }) => object.metadata.name)
      .filter((name) => (SERVICE_USERS as readonly string[]).includes(name));
    expect(names.sort()).toEqual([...SERVICE_USERS].sort());
    const accounts = new Set(ofKind(overlay, "ServiceAccount").map((sa) => sa.metadata.name));
    for (const { object, pod } of deployments(overlay)) {
      if (!(SERVICE_USERS as readonly string[]).includes(object.metadata.name)) continue;
      expect(pod.serviceAccountName, object.metadata.name).toBe(object.metadata.name);
      expect(accounts.has(object.metadata.name)).toBe(true);
    }
  });

  it("runs every container as non-root, read-only, unprivileged, with requests and limits", () => {
    const problems: string[] = [];
    for (const { object, pod } of workloads(overlay)) {
      for (const container of containersOf(pod)) {
        problems.push(
          ...containerProblems(`${object.metadata.name}/${container.name}`, pod, container),
        );
      }
    }
    expect(problems).toEqual([]);
  });

  it("probes every Deployment: liveness on /healthz, readiness on /readyz, on a declared port", () => {
    for (const { object, pod } of deployments(overlay)) {
      for (const container of pod.containers) {
        const where = `${object.metadata.name}/${container.name}`;
        const ports = (container.ports ?? []).flatMap((port) => [port.name, port.containerPort]);
        const probed = (probe: Probe | undefined, path: string) => {
          expect(probe?.httpGet?.path.split("?")[0], where).toBe(path);
          expect(ports, where).toContain(probe?.httpGet?.port);
        };
        probed(container.livenessProbe, "/healthz");
        probed(container.readinessProbe, readinessPath(object));
      }
    }
  });

  it("lets only the git actuator reference the Git and forge credentials", () => {
    const holders = workloads(overlay)
      .filter(({ pod }) => [...secretsReferencedBy(pod)].map(unhashed).includes(GIT_SECRET))
      .map(({ object }) => object.metadata.name);
    expect(holders).toEqual(["git-actuator"]);
  });

  it("gives each service its own NATS user's Secret, and a database URL to audit and gateway only", () => {
    const secrets = new Map(ofKind(overlay, "Secret").map((s) => [unhashed(s.metadata.name), s]));
    for (const { object, pod } of workloads(overlay)) {
      const own = [...secretsReferencedBy(pod)].map(unhashed).filter((name) => name !== GIT_SECRET);
      const name = object.metadata.name;
      const expected = [
        ...(SERVICE_USERS.includes(name as never) ? [`safedeploy-${name}`] : []),
        ...(EXPECTED_SECRETS[name] ?? []),
      ].sort();
      expect(own.sort(), name).toEqual(expected);
      for (const secretName of own) {
        if (FILE_SECRETS.includes(secretName)) continue;
        const env = decoded(secrets.get(secretName));
        const user = secretName.replace(/^safedeploy-/, "");
        if (env.NATS_URL !== undefined) expect(new URL(env.NATS_URL).username).toBe(user);
        expect(env.DATABASE_URL !== undefined, secretName).toBe(
          ["audit", "gateway", "migrate"].includes(user),
        );
      }
    }
  });

  it("admits traffic from outside the namespace to the gateway's API only", () => {
    const policies = ofKind(overlay, "NetworkPolicy");
    const denyAll = policies.find(
      (p) => JSON.stringify(p.spec?.podSelector) === "{}" && p.spec?.ingress === undefined,
    );
    expect(denyAll?.spec?.policyTypes).toEqual(["Ingress"]);
    const outside = policies.flatMap((policy) => externalRules(policy));
    expect(
      outside.filter((rule) => rule !== "gateway:http" && rule !== "metrics:monitoring"),
    ).toEqual([]);
    expect(outside).toContain("gateway:http");
  });

  it("has a PodDisruptionBudget for every Deployment with more than one replica", () => {
    const budgets = ofKind(overlay, "PodDisruptionBudget").map((pdb) =>
      JSON.stringify((pdb.spec?.selector as { matchLabels: unknown }).matchLabels),
    );
    for (const { object } of deployments(overlay)) {
      const replicas = (object.spec?.replicas as number | undefined) ?? 1;
      const selector = JSON.stringify(
        (object.spec?.selector as { matchLabels: unknown }).matchLabels,
      );
      expect(budgets.includes(selector), object.metadata.name).toBe(replicas > 1);
    }
  });

  it("runs the provision Job as the provisioner and the migration Job as the schema owner", () => {
    const jobs = Object.fromEntries(ofKind(overlay, "Job").map((job) => [job.metadata.name, job]));
    const args = (name: string) => {
      const job = jobs[name];
      if (job === undefined) throw new Error(`no Job ${name}`);
      return podSpecOf(job)?.containers[0];
    };
    expect(args("provision")).toMatchObject({
      args: ["packages/cli/bin/safedeploy.js", "provision"],
    });
    expect(args("migrate")).toMatchObject({ args: ["packages/cli/bin/safedeploy.js", "migrate"] });
    const secrets = new Map(ofKind(overlay, "Secret").map((s) => [unhashed(s.metadata.name), s]));
    expect(new URL(decoded(secrets.get("safedeploy-provisioner")).NATS_URL ?? "").username).toBe(
      "provisioner",
    );
    expect(new URL(decoded(secrets.get("safedeploy-migrate")).DATABASE_URL ?? "").username).toBe(
      "safedeploy_migrator",
    );
  });
});

const EXPECTED_SECRETS: Readonly<Record<string, readonly string[]>> = {
  provision: ["safedeploy-provisioner"],
  migrate: ["safedeploy-migrate"],
  nats: ["safedeploy-nats-server"],
  postgres: ["safedeploy-postgres"],
  gateway: ["safedeploy-gateway-tokens"],
  notifier: ["safedeploy-notifier-channels"],
};

/** Secrets of files rather than variables: the API token hashes, the notifier's channels. */
const FILE_SECRETS = ["safedeploy-gateway-tokens", "safedeploy-notifier-channels"];

function readinessPath(object: KubeObject): string {
  // The dev servers have their own readiness endpoints; SafeDeploy's services answer /readyz.
  return object.metadata.name === "nats" ? "/healthz" : "/readyz";
}

function decoded(secret: KubeObject | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret?.data ?? {}).map(([key, value]) => [
      key,
      Buffer.from(value, "base64").toString("utf8"),
    ]),
  );
}

function containerProblems(
  where: string,
  pod: PodSpec,
  container: ReturnType<typeof containersOf>[number],
): string[] {
  const security = { ...pod.securityContext, ...container.securityContext };
  const problems: string[] = [];
  if (security.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot`);
  if (typeof security.runAsUser !== "number" || security.runAsUser === 0) {
    problems.push(`${where}: a numeric non-root runAsUser`);
  }
  if (container.securityContext?.allowPrivilegeEscalation !== false) {
    problems.push(`${where}: allowPrivilegeEscalation`);
  }
  if (container.securityContext?.readOnlyRootFilesystem !== true) {
    problems.push(`${where}: readOnlyRootFilesystem`);
  }
  for (const kind of ["requests", "limits"] as const) {
    const resources = container.resources?.[kind] ?? {};
    if (resources.cpu === undefined || resources.memory === undefined) {
      problems.push(`${where}: ${kind} cpu and memory`);
    }
  }
  return problems;
}

interface IngressRule {
  readonly from?: readonly Record<string, unknown>[];
  readonly ports?: readonly { port: string | number }[];
}

/** The rules of `policy` that admit peers outside the namespace, as `pods:port`. */
function externalRules(policy: KubeObject): string[] {
  const selector = policy.spec?.podSelector as { matchLabels?: Record<string, string> };
  const labels = selector.matchLabels ?? {};
  const pods = labels["app.kubernetes.io/name"] === "gateway" ? "gateway" : "";
  const rules = (policy.spec?.ingress as IngressRule[] | undefined) ?? [];
  return rules.flatMap((rule) => {
    const peers = rule.from ?? [{ anywhere: true }];
    const external = peers.some(
      (peer) => "anywhere" in peer || "namespaceSelector" in peer || "ipBlock" in peer,
    );
    if (!external) return [];
    const ports = (rule.ports ?? [{ port: "any" }]).map((port) => String(port.port));
    if (pods === "gateway") return ports.map((port) => `gateway:${port}`);
    const fromMonitoring = peers.every(
      (peer) =>
        JSON.stringify(peer) ===
        JSON.stringify({
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
        }),
    );
    const metricsOnly = ports.every((port) => port === "metrics");
    return [
      fromMonitoring && metricsOnly
        ? "metrics:monitoring"
        : `${JSON.stringify(labels)}:${ports.join(",")}`,
    ];
  });
}

describe("artefacts the overlays copy or mirror", () => {
  it("ships the generated NATS permissions unchanged to the dev NATS server", async () => {
    const copy = await readFile(join(KUBERNETES_DIR, "overlays/dev/nats/permissions.conf"), "utf8");
    expect(copy).toBe(natsPermissionsConfig(DEFAULT_NAMESPACE));
  });

  it("ships the same file as deploy/nats/permissions.conf", async () => {
    const copy = await readFile(join(KUBERNETES_DIR, "overlays/dev/nats/permissions.conf"), "utf8");
    expect(copy).toBe(await readFile(join(REPO, "deploy/nats/permissions.conf"), "utf8"));
  });

  it("gives the dev NATS server a password for every user the permissions name", () => {
    const server = rendered.dev.find(
      (o) => o.kind === "Secret" && unhashed(o.metadata.name) === "safedeploy-nats-server",
    );
    const referenced = [
      ...natsPermissionsConfig(DEFAULT_NAMESPACE).matchAll(/password: \$(\w+)/g),
    ].map((m) => m[1]);
    expect(Object.keys(decoded(server)).sort()).toEqual(referenced.sort());
  });

  it("runs deploy/postgres/init-roles.sh unchanged in the dev PostgreSQL", async () => {
    const copy = await readFile(
      join(KUBERNETES_DIR, "overlays/dev/postgres/init-roles.sh"),
      "utf8",
    );
    expect(copy).toBe(await readFile(join(REPO, "deploy/postgres/init-roles.sh"), "utf8"));
  });

  it("carries the control-plane alerts of deploy/prometheus unchanged in the PrometheusRule", async () => {
    const rules = parse(
      await readFile(join(REPO, "deploy/prometheus/rules/safedeploy-control-plane.yml"), "utf8"),
    ) as unknown;
    const [rule] = ofKind("prod", "PrometheusRule");
    expect(rule?.spec).toEqual(rules);
    // The alerts name job "safedeploy": the ServiceMonitor takes the job from the part-of label.
    const [monitor] = ofKind("prod", "ServiceMonitor");
    const jobLabel = monitor?.spec?.jobLabel as string;
    const metrics = ofKind("prod", "Service").find((s) => s.metadata.name === "safedeploy-metrics");
    expect(metrics?.metadata.labels?.[jobLabel]).toBe("safedeploy");
  });

  it("keeps passwords out of the repository: Secrets come only from generated files", async () => {
    for (const overlay of OVERLAYS) {
      const text = await readFile(
        join(KUBERNETES_DIR, `overlays/${overlay}/kustomization.yaml`),
        "utf8",
      );
      const kustomization = parse(text) as {
        secretGenerator: { envs?: string[]; files?: string[]; literals?: string[] }[];
      };
      for (const generator of kustomization.secretGenerator) {
        expect(generator.literals).toBeUndefined();
        for (const file of [...(generator.envs ?? []), ...(generator.files ?? [])]) {
          expect(file).toMatch(/^secrets\//);
        }
      }
    }
    const ignored = await readFile(join(KUBERNETES_DIR, ".gitignore"), "utf8");
    expect(ignored).toContain("overlays/*/secrets/");
  });

  it("builds the image without .git, local state, secrets or installed dependencies, as non-root", async () => {
    const ignore = (await readFile(join(REPO, ".dockerignore"), "utf8")).split("\n");
    for (const entry of [
      ".git",
      ".safedeploy",
      "**/.env",
      "**/node_modules",
      "deploy/kubernetes/overlays/*/secrets",
    ]) {
      expect(ignore).toContain(entry);
    }
    const dockerfile = await readFile(join(REPO, "deploy/Dockerfile"), "utf8");
    const users = [...dockerfile.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(dockerfile).toMatch(/pnpm prune --prod/);
  });
});
