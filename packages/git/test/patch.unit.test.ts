import { describe, expect, it } from "vitest";
import { editManifestPatch } from "../src/index.js";

const deployment = `# checkout, owned by payments
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout # the service
spec:
  replicas: 2 # two, for now
  template:
    spec:
      containers:
        - name: checkout
          image: shop/checkout:v1
`;

describe("editManifestPatch", () => {
  it("merges the patch into the workload, keeping comments and untouched keys", () => {
    const edit = editManifestPatch(deployment, {
      spec: { replicas: 4 },
      metadata: { labels: { tier: "web" } },
    });
    expect(edit).toEqual({
      kind: "edited",
      rollout: "Deployment/checkout",
      text: deployment
        .replace("replicas: 2 # two, for now", "replicas: 4 # two, for now")
        .replace(
          "  name: checkout # the service\n",
          "  name: checkout # the service\n  labels:\n    tier: web\n",
        ),
    });
  });

  it("removes what the patch sets to null, and leaves the file's other documents byte for byte", () => {
    const file = `# header\nkind: Service\nmetadata: { name: checkout }   # keep me\n---\n${deployment}---\nkind: ConfigMap\nmetadata: { name: c }\n`;
    const edit = editManifestPatch(file, { spec: { replicas: null } });
    expect(edit.kind).toBe("edited");
    if (edit.kind !== "edited") return;
    expect(
      edit.text.startsWith(
        "# header\nkind: Service\nmetadata: { name: checkout }   # keep me\n---\n",
      ),
    ).toBe(true);
    expect(edit.text.endsWith("---\nkind: ConfigMap\nmetadata: { name: c }\n")).toBe(true);
    expect(edit.text).not.toContain("replicas");
  });

  it("refuses a patch that changes nothing, several workloads, and files without one", () => {
    expect(editManifestPatch(deployment, { spec: { replicas: 2 } })).toEqual({
      kind: "problem",
      reason: "Deployment/checkout already is as the patch says",
      unchanged: true,
    });
    expect(editManifestPatch(`${deployment}---\n${deployment}`, { spec: { replicas: 3 } })).toEqual(
      {
        kind: "problem",
        reason: "more than one workload in the file",
      },
    );
    expect(editManifestPatch("kind: Service\nmetadata: { name: s }\n", { spec: {} })).toEqual({
      kind: "no-rollout",
    });
  });
});
