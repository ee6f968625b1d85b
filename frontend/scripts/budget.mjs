// The bundle budget: the JavaScript each app's index.html loads before it can render (its entry
// module and every chunk it preloads), gzipped, must stay within BUDGET_KB. Lazily loaded chunks
// (the dashboard's charts) do not count: they load after the first screen.
//
// 150 KB: on a mid-range phone over a slow 4G link (1.6 Mbit/s, 150 ms RTT, the "fast mobile"
// profile of Lighthouse), 150 KB of compressed script takes ~0.8 s to download and, at roughly
// 1 MB of parsed JavaScript per second on such a CPU, well under a second to parse and run, which
// keeps the first screen interactive within the 3-5 s a fast mobile page aims for, with room
// left for CSS and the API's first answers. React and react-dom alone take ~60 KB of it.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 150;
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let failed = false;

for (const app of ["user-app", "admin-dashboard"]) {
  const dist = join(root, app, "dist");
  const html = readFileSync(join(dist, "index.html"), "utf8");
  const initial = new Set(
    [...html.matchAll(/<(?:script[^>]*type="module"[^>]*src|link[^>]*rel="modulepreload"[^>]*href)="\.?\/?([^"]+\.js)"/g)].map((m) => m[1]),
  );
  let bytes = 0;
  for (const file of initial) bytes += gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
  const lazy = readdirSync(join(dist, "assets")).filter((f) => f.endsWith(".js") && !initial.has(`assets/${f}`)).length;
  const kb = bytes / 1024;
  const verdict = kb <= BUDGET_KB ? "ok" : "OVER BUDGET";
  console.log(`${app}: initial JavaScript ${kb.toFixed(1)} KB gzipped (budget ${BUDGET_KB} KB, ${initial.size} file(s), ${lazy} lazy chunk(s)): ${verdict}`);
  if (kb > BUDGET_KB) failed = true;
}
process.exit(failed ? 1 : 0);
