import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import { plugboardProxy } from "./server-proxy";

export default defineConfig({
  plugins: [react(), plugboardProxy()],
});
