import { describe, expect, it } from "vitest";
import { notifierOptionsFromEnv } from "../src/service.js";

describe("the notifier's variables", () => {
  it("reads the public URL, the secrets directory and the retry schedule", () => {
    expect(
      notifierOptionsFromEnv({
        SAFEDEPLOY_PUBLIC_URL: "https://sd.example",
        SAFEDEPLOY_NOTIFIER_SECRETS_DIR: "/run/secrets/n",
        SAFEDEPLOY_NOTIFY_RETRY: "5s, 1m,10m",
      }),
    ).toEqual({
      publicUrl: "https://sd.example",
      secretsDir: "/run/secrets/n",
      retryScheduleMs: [5_000, 60_000, 600_000],
    });
    expect(notifierOptionsFromEnv({})).toEqual({});
  });

  it("refuses a bad URL or schedule, naming the variable", () => {
    expect(() =>
      notifierOptionsFromEnv({
        SAFEDEPLOY_PUBLIC_URL: "ftp://x",
        SAFEDEPLOY_NOTIFY_RETRY: "5s,soon",
      }),
    ).toThrow(
      /SAFEDEPLOY_PUBLIC_URL[\s\S]*SAFEDEPLOY_NOTIFY_RETRY|SAFEDEPLOY_NOTIFY_RETRY[\s\S]*SAFEDEPLOY_PUBLIC_URL/,
    );
  });
});
