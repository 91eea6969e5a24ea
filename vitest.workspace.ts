import { defineConfig } from "vitest/config"

// The workspace runs from source: each package's `exports` send the `@fiberpool/source` condition to `src/*.ts`
// (consumers get `dist/`). npm scripts set it through `.npmrc` (`node-options`); setting it here too covers a
// direct `vitest` call, and every process or thread a test starts inherits it.
const sourceCondition = "--conditions=@fiberpool/source"
if (!(process.env.NODE_OPTIONS ?? "").includes(sourceCondition)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} ${sourceCondition}`.trim()
}

// The single source of the test projects: `npm test` runs `vitest run --config vitest.workspace.ts`.
export default defineConfig({
  // Vite resolves the test files' imports itself and does not read NODE_OPTIONS: the condition goes first,
  // before Vite's default conditions (repeated here, since setting the option replaces them).
  resolve: { conditions: ["@fiberpool/source", "module", "browser", "development|production"] },
  ssr: {
    resolve: {
      conditions: ["@fiberpool/source", "module", "node", "development|production"],
      externalConditions: ["@fiberpool/source"]
    }
  },
  test: {
    projects: [
      { extends: true, test: { name: "core", root: "./packages/core", include: ["test/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "node", root: "./packages/node", include: ["test/**/*.test.ts"], testTimeout: 60_000 }
      },
      {
        extends: true,
        test: {
          name: "durable",
          root: "./packages/durable",
          include: ["test/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      },
      {
        extends: true,
        test: { name: "examples", root: "./examples", include: ["test/**/*.test.ts"], testTimeout: 60_000 }
      },
      {
        extends: true,
        test: { name: "docs", root: "./scripts", include: ["test/**/*.test.ts"], testTimeout: 400_000 }
      },
      { extends: true, test: { name: "bench", root: "./bench", include: ["test/**/*.test.ts"], testTimeout: 300_000 } },
      {
        extends: true,
        test: {
          name: "consumer",
          root: "./scripts/consumer",
          include: ["*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000
        }
      }
    ],
    passWithNoTests: true,
    // Two test files at a time (vitest's default on 2 cores is one): most integration tests wait on processes,
    // databases and real timers rather than compute, so a second file overlaps those waits.
    maxWorkers: 2
  }
})
