import { readFileSync } from "node:fs";
import { assembleCatalog, formatCatalogError, parseCatalogText } from "@safedeploy/catalog";
import { deliveryId, standardWebhookSignature } from "@safedeploy/notify";
import { parseSlackUsers } from "@safedeploy/service-gateway";
import { serviceYaml } from "@safedeploy/testing";
import { describe, expect, it } from "vitest";

// The examples of docs/notifications.md and docs/slack.md (and of the README sections taken from
// them): what users copy, so each must stay valid.
const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), "utf8");
const FENCES = { yaml: /```yaml\n([\s\S]*?)```/g, text: /```text\n([\s\S]*?)```/g } as const;
const blocks = (text: string, info: keyof typeof FENCES) =>
  [...text.matchAll(FENCES[info])].map((m) => m[1] ?? "");

/** The catalog of one example beside the services it names. */
function catalogOf(yaml: string) {
  const services = ["checkout", "cart"].map((name) => serviceYaml(name)).join("\n---\n");
  return assembleCatalog([
    parseCatalogText(services, "services.yaml"),
    parseCatalogText(yaml, "example.yaml"),
  ]);
}

describe("the notification and Slack docs' examples", () => {
  it.each([
    ["notifications.md", 3],
    ["slack.md", 1],
  ] as const)("%s: every yaml block is a valid catalog of Notifiers", (name, notifiers) => {
    const found = blocks(doc(name), "yaml");
    expect(found.length).toBeGreaterThan(0);
    const catalogs = found.map(catalogOf);
    for (const catalog of catalogs) {
      expect(catalog.ok ? [] : catalog.errors.map(formatCatalogError)).toEqual([]);
    }
    const count = catalogs.reduce((n, c) => n + (c.ok ? c.catalog.notifiers.length : 0), 0);
    expect(count).toBe(notifiers);
  });

  it("slack.md: the users file parses, with its roles", () => {
    const [users] = blocks(doc("slack.md"), "text");
    const lookup = parseSlackUsers(users ?? "");
    expect(lookup("U0ANA")).toEqual({ name: "ana", role: "approver" });
    expect(lookup("U0VERA")).toEqual({ name: "vera", role: "viewer" });
    expect(lookup("U0NOBODY")).toBeNull();
  });

  it("notifications.md: the webhook-id and the signature example are what the notifier computes", () => {
    const text = doc("notifications.md");
    expect(text).toContain(`webhook-id: ${deliveryId("ops-webhook", "incidents.opened:INC-7")}`);
    const signature = standardWebhookSignature(
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      1614265330,
      '{"test": 2432232314}',
    );
    expect(text).toContain(`\`${signature}\``);
  });

  it("a notifier with a wrong field, or naming an unknown service, is refused, naming the field", () => {
    const notifier = (spec: string) =>
      catalogOf(
        `apiVersion: safedeploy.dev/v1\nkind: Notifier\nmetadata: { name: x }\nspec:\n${spec}`,
      );
    const errors = (result: ReturnType<typeof catalogOf>) =>
      result.ok ? [] : result.errors.map(formatCatalogError);
    expect(errors(notifier("  type: webhook\n  url: https://h.example\n"))).toEqual([
      "example.yaml#0: spec.secretFile: is required for webhook",
    ]);
    expect(errors(notifier("  type: slack\n  urlFile: u\n  services: [nowhere]\n"))).toEqual([
      'example.yaml#0: spec.services[0]: unknown service "nowhere"',
    ]);
  });
});
