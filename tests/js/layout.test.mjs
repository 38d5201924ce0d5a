// www/'s folders are who runs the code: page/ (the page's main thread), worker/ (the engine's
// worker), package/ (the package for other pages) and seam/ (what they share). Each imports only
// its own folder and the seam (and the build's pkg/ and vendor/), so that no module runs where
// it was not meant to, and no import goes round in a circle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, dirname, normalize, relative } from "node:path";

const WWW = new URL("../../www/", import.meta.url).pathname;
const BUILT = new Set(["pkg", "vendor", "weights"]);

/** Every module of www/ (the build's folders left out), by its path in www/. */
function modules(dir = WWW) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return BUILT.has(entry.name) && dir === WWW ? [] : modules(path);
    return entry.name.endsWith(".js") ? [relative(WWW, path)] : [];
  });
}

/** The modules a module imports, static or dynamic (a worker it starts is not an import). */
function imports(path) {
  const source = readFileSync(join(WWW, path), "utf8");
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /^\s*import\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
  ];
  return [...new Set(patterns.flatMap((p) => [...source.matchAll(p)].map(([, target]) => normalize(join(dirname(path), target)))))];
}

const graph = new Map(modules().map((path) => [path, imports(path)]));
const folder = (path) => (path.includes("/") ? path.split("/")[0] : "");

test("no import goes round in a circle", () => {
  assert.ok(graph.size > 20 && graph.has("page/main.js") && graph.has("worker/worker.js"), "the modules are found");
  const done = new Set();
  const cycles = [];
  const visit = (path, stack) => {
    if (stack.includes(path)) return cycles.push([...stack.slice(stack.indexOf(path)), path].join(" → "));
    if (done.has(path)) return;
    for (const next of graph.get(path) ?? []) visit(next, [...stack, path]);
    done.add(path);
  };
  for (const path of graph.keys()) visit(path, []);
  assert.deepEqual(cycles, []);
});

test("each folder imports only itself and the seam; the page never imports the package", () => {
  const allowed = { page: ["page", "seam", "vendor"], worker: ["worker", "seam", "pkg"], package: ["package", "seam"], seam: ["seam"], "": [] };
  const wrong = [];
  for (const [path, targets] of graph) {
    for (const target of targets) {
      if (!graph.has(target) && !BUILT.has(folder(target))) wrong.push(`${path} imports ${target}, which is not there`);
      else if (!(allowed[folder(path)] ?? []).includes(folder(target))) wrong.push(`${path} imports ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
  // The check sees imports: the page's boot reaches the engine's client and the wasm glue is the worker's.
  assert.ok(graph.get("page/main.js").includes("page/actions.js") && graph.get("page/actions.js").includes("seam/engine.js"));
  assert.ok(graph.get("worker/worker.js").includes("pkg/fewshot.js"));
});
