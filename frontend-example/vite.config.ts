import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The page calls the Plugboard server directly; list this page's origin (e.g.
// http://localhost:5173) in the server's PLUGBOARD_CORS_ORIGINS.
export default defineConfig({
  plugins: [react()],
});
