import { defineConfig } from "vitest/config"

// The single source of the test projects: `npm test` runs `vitest run --config vitest.workspace.ts`.
export default defineConfig({
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
        test: { name: "docs", root: "./scripts", include: ["test/**/*.test.ts"], testTimeout: 180_000 }
      },
      { extends: true, test: { name: "bench", root: "./bench", include: ["test/**/*.test.ts"], testTimeout: 120_000 } }
    ],
    passWithNoTests: true
  }
})
