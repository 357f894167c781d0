// Renders the kustomize overlays of deploy/kubernetes the way docs/kubernetes.md says to (the
// Secret files from `safedeploy kubernetes-secrets`, then `kubectl kustomize`), in a copy of the
// folder so the tests write no secret into the repository, and validates each object offline
// against the Kubernetes, Prometheus Operator and Argo Rollouts schemas.
import { execFile } from "node:child_process";
import { cp, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { runCli } from "@safedeploy/cli";
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";
import { ClusterAnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/ClusterAnalysisTemplate";
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { Job } from "kubernetes-models/batch/v1/Job";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";

const run = promisify(execFile);

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const KUBERNETES_DIR = join(REPO, "deploy/kubernetes");

/** A rendered object, as far as these tests look into it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
  };
  readonly spec?: Record<string, unknown>;
  readonly data?: Record<string, string>;
}

interface Validatable {
  validate(): void;
}

/** The model class of every kind the overlays may hold; any other kind fails the test. */
const MODELS: Readonly<Record<string, new (data: never) => Validatable>> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "argoproj.io/v1alpha1/Rollout": Rollout,
  "argoproj.io/v1alpha1/AnalysisTemplate": AnalysisTemplate,
  "argoproj.io/v1alpha1/ClusterAnalysisTemplate": ClusterAnalysisTemplate,
};

/** Schema problems of `object` (empty when valid), naming the object. */
export function schemaProblems(object: KubeObject): string[] {
  const model = MODELS[`${object.apiVersion}/${object.kind}`];
  const name = `${object.kind} ${object.metadata.name}`;
  if (model === undefined) return [`${name}: no schema for ${object.apiVersion} ${object.kind}`];
  try {
    new model(normalised(object) as never).validate();
    return [];
  } catch (error) {
    return [`${name}: ${(error as Error).message}`];
  }
}

/**
 * kustomize wraps a Secret's base64 values at 70 columns; the API server's decoder (Go's
 * encoding/base64) skips those newlines, the schema's "byte" format does not.
 */
function normalised(object: KubeObject): KubeObject {
  if (object.kind !== "Secret" || object.data === undefined) return object;
  const data = Object.fromEntries(
    Object.entries(object.data).map(([key, value]) => [key, value.replace(/\n/g, "")]),
  );
  return { ...object, data };
}

/** Fails loudly when Debian's kubectl (with its built-in kustomize) is not installed. */
export async function requireKubectl(): Promise<string> {
  try {
    const { stdout } = await run("kubectl", ["version", "--client"]);
    return stdout;
  } catch (error) {
    throw new Error(
      `kubectl is required to render deploy/kubernetes (apt-get install -y kubectl): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** A copy of deploy/kubernetes without any secrets/ folder the working tree may hold. */
export async function copyKubernetesDir(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "sd-kubernetes-"));
  await cp(KUBERNETES_DIR, join(root, "deploy/kubernetes"), {
    recursive: true,
    filter: (source) => !/\/overlays\/[^/]+\/secrets(\/|$)/.test(source),
  });
  return root;
}

/** The `safedeploy` command line in-process, as `pnpm exec safedeploy ARGS` in `cwd`. */
export async function safedeploy(
  cwd: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv: args,
    cwd,
    env: {},
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

/** `kubectl kustomize DIR` in `cwd`, parsed into its objects. */
export async function kustomize(cwd: string, dir: string): Promise<KubeObject[]> {
  const { stdout } = await run("kubectl", ["kustomize", dir], { cwd, maxBuffer: 32 << 20 });
  return parseAllDocuments(stdout).map((document) => {
    if (document.errors.length > 0) throw new Error(document.errors.join("; "));
    return document.toJS() as KubeObject;
  });
}

interface Container {
  readonly name: string;
  readonly securityContext?: Record<string, unknown>;
  readonly resources?: {
    readonly requests?: Record<string, string>;
    readonly limits?: Record<string, string>;
  };
  readonly env?: readonly { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[];
  readonly envFrom?: readonly { secretRef?: { name: string } }[];
  readonly ports?: readonly { name?: string; containerPort: number }[];
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
}

export interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: string | number };
}

export interface PodSpec {
  readonly serviceAccountName?: string;
  readonly securityContext?: Record<string, unknown>;
  readonly containers: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly volumes?: readonly {
    secret?: { secretName: string };
    projected?: { sources: readonly { secret?: { name: string } }[] };
  }[];
}

/** The pod template of a workload, or undefined for other kinds. */
export function podSpecOf(object: KubeObject): PodSpec | undefined {
  if (!["Deployment", "StatefulSet", "Job"].includes(object.kind)) return undefined;
  const template = object.spec?.template as { spec: PodSpec } | undefined;
  return template?.spec;
}

export function containersOf(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

/** Every Secret a pod refers to, by any route: env, envFrom, volumes, projected volumes. */
export function secretsReferencedBy(pod: PodSpec): Set<string> {
  const names = new Set<string>();
  for (const container of containersOf(pod)) {
    for (const source of container.envFrom ?? []) {
      if (source.secretRef !== undefined) names.add(source.secretRef.name);
    }
    for (const variable of container.env ?? []) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref !== undefined) names.add(ref.name);
    }
  }
  for (const volume of pod.volumes ?? []) {
    if (volume.secret !== undefined) names.add(volume.secret.secretName);
    for (const source of volume.projected?.sources ?? []) {
      if (source.secret !== undefined) names.add(source.secret.name);
    }
  }
  return names;
}

/** A generated name without kustomize's content-hash suffix (`safedeploy-audit-5hk2…`). */
export function unhashed(name: string): string {
  return name.replace(/-[a-z0-9]{10}$/, "");
}
