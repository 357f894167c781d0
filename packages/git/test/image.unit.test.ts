import { describe, expect, it } from "vitest";
import { editImage } from "../src/index.js";

const deployment = `# the checkout service
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout   # keep me
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/shop/checkout:v1.5.0 # current
          ports: [{ containerPort: 8080 }]
        - name: sidecar
          image: "registry.example.com/proxy:2.1"
---
apiVersion: v1
kind: Service
metadata: { name: checkout }
`;

describe("editImage", () => {
  it("replaces only the bytes of the named container's image, comments and all kept", () => {
    const edit = editImage(deployment, "app", "registry.example.com/shop/checkout:v1.6.0");
    expect(edit).toMatchObject({
      kind: "edited",
      workload: "Deployment/checkout",
      container: "app",
      from: "registry.example.com/shop/checkout:v1.5.0",
    });
    if (edit.kind !== "edited") return;
    expect(edit.text).toBe(deployment.replace("checkout:v1.5.0 #", "checkout:v1.6.0 #"));
  });

  it("keeps the quotes of a quoted image", () => {
    const edit = editImage(deployment, "sidecar", "registry.example.com/proxy:2.2");
    if (edit.kind !== "edited") throw new Error(JSON.stringify(edit));
    expect(edit.text).toBe(
      deployment.replace('"registry.example.com/proxy:2.1"', '"registry.example.com/proxy:2.2"'),
    );
  });

  it("needs the container named when a file has several, and says when it is already set", () => {
    const several = editImage(deployment, undefined, "x:1");
    expect(several.kind === "problem" && several.reason).toMatch(/several containers/);
    const same = editImage(deployment, "app", "registry.example.com/shop/checkout:v1.5.0");
    expect(same).toMatchObject({ kind: "problem", reason: /already runs/, unchanged: true });
    expect(several).not.toHaveProperty("unchanged");
    expect(editImage("kind: ConfigMap\ndata: {}\n", undefined, "x:1")).toEqual({
      kind: "no-workload",
    });
    expect(editImage(deployment, "app", "x:1 && rm")).toMatchObject({ kind: "problem" });
  });

  it("edits a Rollout's only container without naming it", () => {
    const rollout = `kind: Rollout\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1\n`;
    const edit = editImage(rollout, undefined, "web:2");
    expect(edit).toMatchObject({ kind: "edited", workload: "Rollout/web" });
    if (edit.kind === "edited") expect(edit.text).toBe(rollout.replace("web:1", "web:2"));
  });
});
