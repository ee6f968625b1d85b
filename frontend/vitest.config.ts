import { defineConfig } from "vitest/config";

// One run for the shared client logic and both apps' components (those name their DOM
// environment: `// @vitest-environment jsdom`; the rest run in plain Node, much faster).
export default defineConfig({
  test: {
    environment: "node",
    include: ["{shared,user-app,admin-dashboard}/src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
