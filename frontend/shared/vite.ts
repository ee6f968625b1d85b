import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import type { UserConfig } from "vite";

/**
 * The Vite config both apps build with. `base: "./"` makes every asset URL relative, so one
 * build serves from `/` on its own host or under a path prefix (`/admin`) behind an ingress;
 * the apps route with the URL's hash, so a deep link never asks the server for a path it lacks.
 * Where the API lives is read at run time from `config.json` beside index.html.
 */
export function appConfig(port: number): UserConfig {
  return {
    base: "./",
    plugins: [react(), tailwindcss()],
    server: { port, strictPort: true },
    preview: { port, strictPort: true },
    build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 600 },
  };
}
