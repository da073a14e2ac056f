// The web front-end's build: web/ → build/web/ (index.html and content-hashed files under assets/),
// which the gateway serves at / (gateway/render.py --web-dir). Nothing here is fetched at run time
// from anywhere but the gateway.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../build/web",
    emptyOutDir: true,
    assetsDir: "assets",
    // The gateway answers each file itself, up to 4 MiB (MAX_DIRECT_RESPONSE_BYTES).
    chunkSizeWarningLimit: 3000,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    // `npx vite` for development: API calls go to the suite's gateway.
    proxy: { "/v1": "http://127.0.0.1:8080", "/smart110.": "http://127.0.0.1:8080", "/config.json": "http://127.0.0.1:8080" },
  },
});
