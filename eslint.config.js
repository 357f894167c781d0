// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import security from "eslint-plugin-security";
import { importX } from "eslint-plugin-import-x";
import globals from "globals";

/** Packages that only the named layer may import (see DESIGN.md, "Packages"). */
const natsOnlyInJetstream = {
  group: ["@nats-io/*"],
  message: "Only packages/jetstream talks to NATS; use @safedeploy/jetstream.",
};
const noDeepImports = {
  group: ["@safedeploy/*/*"],
  message: "Import a package through its entry point only.",
};
const noServiceImports = {
  group: ["**/services/**", "@safedeploy/service-*"],
  message: "Packages and services never import a service.",
};

export default tseslint.config(
  {
    ignores: ["**/dist/**", "**/coverage/**", "**/node_modules/**", "bench/results/**"],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  security.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "import-x/no-self-import": "error",
      // A package is reached through its name and entry point, never a path into it.
      "import-x/no-relative-packages": "error",
      "no-console": "error",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/consistent-type-imports": "error",
      // Object-key lookups here use validated, typed keys; the rule's heuristics only add noise.
      "security/detect-object-injection": "off",
      "no-restricted-imports": [
        "error",
        { patterns: [natsOnlyInJetstream, noDeepImports, noServiceImports] },
      ],
    },
  },
  {
    files: ["packages/jetstream/**", "packages/testing/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [noDeepImports, noServiceImports] }],
    },
  },
  {
    // The functional core: no I/O, no clock, no environment, no logger.
    files: ["packages/core/src/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              // rrule-temporal and temporal-polyfill: pure calendar arithmetic (freeze-window.ts).
              regex: "^(?!@safedeploy/schema$|rrule-temporal$|temporal-polyfill$|\\./)",
              message:
                "core imports only @safedeploy/schema, the pure calendar libraries and its own modules.",
            },
          ],
        },
      ],
      "no-restricted-globals": ["error", "process", "fetch", "setTimeout", "setInterval"],
      // One concept a file: a core file that grows past this is split by concept.
      "max-lines": ["error", { max: 400, skipBlankLines: true, skipComments: true }],
      "no-restricted-syntax": [
        "error",
        {
          selector: "MemberExpression[object.name='Date'][property.name='now']",
          message: "core receives time as data (now).",
        },
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: "core receives time as data (now).",
        },
        {
          selector: "MemberExpression[object.name='Math'][property.name='random']",
          message: "core is deterministic.",
        },
      ],
    },
  },
  {
    // A handler reads like a sentence: subscribe, validate, decide (in core), persist, publish.
    files: [
      "services/*/src/handlers/**",
      "services/git-actuator/src/actuator.ts",
      "services/proposal/src/proposals.ts",
      "services/proposal/src/governance.ts",
      "services/release-train/src/effects.ts",
      "services/release-train/src/driver.ts",
      "services/release-train/src/outcomes.ts",
      "services/release-train/src/commands.ts",
    ],
    rules: {
      "max-lines-per-function": ["error", { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ["packages/schema/src/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^(?!zod$|\\./)", message: "schema imports only zod and its own modules." },
          ],
        },
      ],
    },
  },
  {
    files: ["**/test/**", "**/*.test.ts", "bench/**", "packages/testing/src/**"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "security/detect-non-literal-fs-filename": "off",
      "security/detect-child-process": "off",
    },
  },
  {
    // End-to-end tests and benchmarks compose the services; nothing else may.
    files: ["test/**", "bench/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [natsOnlyInJetstream, noDeepImports] }],
    },
  },
  {
    // Reading files the operator named (catalogs, migrations, manifests) is these modules' job.
    files: ["packages/db/src/migrate.ts", "packages/catalog/src/**", "packages/cli/src/**"],
    rules: { "security/detect-non-literal-fs-filename": "off" },
  },
  {
    // The git adapter runs the git CLI (execFile, argv only) in the work directory it owns.
    files: ["packages/git/src/**"],
    rules: {
      "security/detect-child-process": "off",
      "security/detect-non-literal-fs-filename": "off",
    },
  },
  {
    // `safedeploy up`/`demo` supervise child processes (spawn, argv only) and write the state they
    // own under $SAFEDEPLOY_HOME; the demo package writes its generated environment repo.
    files: ["packages/cli/src/stack/**", "packages/demo/src/**"],
    rules: {
      "security/detect-child-process": "off",
      "security/detect-non-literal-fs-filename": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
