// The package (www/package.json "files") and the exported web app (package/app.js beside it) carry
// every module they load: a file one of them imports but the list leaves out works on the
// page, where all of www/ is served, and breaks only in a web developer's page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, dirname, normalize } from "node:path";
import { unzipSync, strFromU8 } from "../../www/vendor/fflate.js";
import { webAppZip } from "../../www/page/webapp.js";

const WWW = new URL("../../www/", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(WWW, "package.json"), "utf8"));

/** The files a module loads: static and dynamic imports, and `new URL("…", import.meta.url)`. */
function loads(path) {
  const source = readFileSync(join(WWW, path), "utf8");
  const found = new Set();
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /^\s*import\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
    /new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const [, target] of source.matchAll(pattern)) found.add(normalize(join(dirname(path), target)));
  }
  return [...found];
}

test("every module the package or the web app loads is in the package", () => {
  const shipped = new Set([...pkg.files, "package/app.js", "package/app.css"]);
  const missing = [];
  for (const file of shipped) {
    // pkg/ is wasm-bindgen's output (built later than these tests run), and loads only its wasm.
    if (!file.endsWith(".js") || file.startsWith("pkg/")) continue;
    for (const target of loads(file)) {
      // The weights are fetched by name and shipped beside the package (webapp.js).
      if (target.endsWith(".tflite")) continue;
      if (!shipped.has(target)) missing.push(`${file} loads ${target}`);
    }
  }
  assert.deepEqual(missing, []);
  // The check itself sees imports: the worker loads the wasm glue and its storage.
  assert.ok(loads("worker/worker.js").includes("pkg/fewshot.js") && loads("worker/worker.js").includes("worker/embeddings.js"));
});

test("the exported web app's service worker keeps every file of the app, and only those", async () => {
  // pkg/ and the weights are built later than these tests may run: their names stand in.
  const read = async (path) => (existsSync(join(WWW, path)) ? new Uint8Array(readFileSync(join(WWW, path))) : new TextEncoder().encode(path));
  const exported = (model) => webAppZip({ read, model, card: "# card" });
  const files = unzipSync(await exported(new Uint8Array([1, 2, 3])));
  const [, listed] = strFromU8(files["sw.js"]).match(/^self\.APP = (.*);\n/);
  const app = JSON.parse(listed);
  assert.deepEqual(app.files, Object.keys(files).filter((f) => f !== "sw.js").sort());
  for (const f of ["index.html", "package/app.js", "package/app.css", "model.fewshot", "worker/worker.js", "pkg/fewshot_bg.wasm"]) assert.ok(app.files.includes(f), f);
  assert.ok(strFromU8(files["sw.js"]).endsWith(readFileSync(join(WWW, "seam/offline-cache.js"), "utf8")), "offline-cache.js follows the list");
  assert.match(strFromU8(files["package/app.js"]), /serviceWorker\s*\.register\("sw\.js"\)/);
  // Its version follows what is in the app: the same export keeps it, another model changes it.
  const again = JSON.parse(strFromU8(unzipSync(await exported(new Uint8Array([1, 2, 3])))["sw.js"]).match(/^self\.APP = (.*);\n/)[1]);
  const other = JSON.parse(strFromU8(unzipSync(await exported(new Uint8Array([1, 2, 4])))["sw.js"]).match(/^self\.APP = (.*);\n/)[1]);
  assert.equal(again.version, app.version);
  assert.notEqual(other.version, app.version);
});
