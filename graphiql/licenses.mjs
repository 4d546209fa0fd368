// Writes dist/LICENSES.txt: the license of every npm package whose code is in the bundle.
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const sections = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!path || entry.dev) continue;
  const dir = path;
  const file = existsSync(dir) && readdirSync(dir).find((name) => /^(licen[cs]e|copying)(\.|$)/i.test(name));
  const text = file ? readFileSync(join(dir, file), "utf8").trim() : `License: ${entry.license ?? "unknown"}`;
  sections.push(`${path.replace(/^node_modules\//, "")} ${entry.version}\n\n${text}`);
}
writeFileSync("dist/LICENSES.txt", sections.join(`\n\n${"-".repeat(72)}\n\n`) + "\n");
console.log(`dist/LICENSES.txt: ${sections.length} packages`);
