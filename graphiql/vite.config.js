// One script and one stylesheet with fixed names, so the binary can carry them as they are.
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    cssCodeSplit: false,
    assetsInlineLimit: 1_000_000,
    rollupOptions: {
      input: "src/main.js",
      output: {
        entryFileNames: "graphiql.js",
        assetFileNames: "graphiql[extname]",
        inlineDynamicImports: true,
      },
    },
  },
});
