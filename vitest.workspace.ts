import { defineConfig } from "vitest/config"

// The single source of the test projects: `npm test` runs `vitest run --config vitest.workspace.ts`.
export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: "core", root: "./packages/core", include: ["test/**/*.test.ts"] } }
    ]
  }
})
