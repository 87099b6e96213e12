/// <reference types="vitest/config" />
// Built into dist/, which Django serves: index.html from the app shell view at `/`, assets through
// whitenoise under /static/ (STATICFILES_DIRS includes frontend/dist), hence the base.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/static/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // OpenSeadragon + Annotorious (with PixiJS) make one large chunk; it is loaded once and cached.
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npm run dev` during development: the API runs on Django's port.
    proxy: { "/api": "http://127.0.0.1:8000", "/static/admin": "http://127.0.0.1:8000" },
  },
  test: {
    // Pure logic runs in Node; a test file that needs the DOM says `// @vitest-environment happy-dom`.
    environment: "node",
    include: ["tests/**/*.test.ts"],
  },
});
