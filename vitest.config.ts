import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript source under the "source" condition, so tests run
// against src without a build step. Only Vite resolves with it: external CommonJS packages (pg)
// must keep Node's own conditions.
const conditions = ["source", "module", "node", "development|production"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    // Integration tests share one NATS and one PostgreSQL; keep parallelism modest on 2 cores.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.unit.test.ts", "services/*/test/**/*.unit.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "int",
          include: ["packages/*/test/**/*.int.test.ts", "services/*/test/**/*.int.test.ts"],
        },
      },
      {
        extends: true,
        test: { name: "e2e", include: ["test/**/*.e2e.test.ts"] },
      },
    ],
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts", "services/*/src/**/*.ts"],
      reporter: ["text-summary", "json-summary"],
      thresholds: {
        "packages/core/src/**": { lines: 95 },
        "packages/schema/src/**": { lines: 95 },
      },
    },
  },
});
