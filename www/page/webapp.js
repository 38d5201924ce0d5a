// "Export web app": one ZIP that classifies photos and the webcam on any static server,
// offline, with nothing from elsewhere: package/app.html as index.html, the package (the
// files package.json lists), the weights, the model and its card, and its own service worker
// (seam/offline-cache.js as sw.js, told every other file of the ZIP), so that it opens again with
// no server. Every file keeps its path in www/ (package/, seam/, worker/, pkg/, weights/);
// index.html, sw.js, the model and its card are at the root. `read(path)` gives the bytes of
// one of this page's own files, by its path in www/ (the service worker has them, so it works
// offline too).
import { zipSync, strFromU8, strToU8 } from "../vendor/fflate.js";
import { WEIGHTS_FILE, sha256Hex } from "../seam/engine.js";

/** The ZIP's bytes. */
export async function webAppZip({ read, model, card }) {
  const pkg = JSON.parse(strFromU8(await read("package.json")));
  const html = strFromU8(await read("package/app.html"));
  const files = {
    "index.html": strToU8(html),
    "model.fewshot": [model, { level: 0 }],
    "MODEL_CARD.md": strToU8(card),
    "README.txt": strToU8(readme(html)),
    [WEIGHTS_FILE]: [await read(WEIGHTS_FILE), { level: 0 }],
  };
  for (const path of ["package/app.js", "package/app.css", ...pkg.files]) files[path] = await read(path);
  files["sw.js"] = strToU8(await serviceWorker(files, strFromU8(await read("seam/offline-cache.js"))));
  return zipSync(files, { level: 6 });
}

/** The app's service worker: `source` (seam/offline-cache.js) after the line that lists every
 * file of the app and their version (the sha256 of them all: an export that changes nothing
 * keeps the visitors' copy), and the line that names its caches: several apps may live on one
 * origin (a folder each), and each keeps its own. */
async function serviceWorker(files, source) {
  const paths = Object.keys(files).sort();
  const bytes = paths.map((path) => (Array.isArray(files[path]) ? files[path][0] : files[path]));
  const version = (await sha256Hex(await new Blob([JSON.stringify(paths), ...bytes]).arrayBuffer())).slice(0, 16);
  const name = 'self.OFFLINE = { prefix: `fewshot-webapp ${self.registration.scope} `, ...self.APP };';
  return `self.APP = ${JSON.stringify({ version, files: paths })};\n${name}\n${source}`;
}

function readme(html) {
  const policy = html.match(/http-equiv="Content-Security-Policy"\s+content="([^"]+)"/)?.[1];
  return [
    "A photo classifier exported from Fewshot. It runs entirely in the visitor's browser:",
    "photos are never uploaded, and it needs nothing from any other site.",
    "",
    "Serve this folder with any static web server, for example:",
    "  python3 -m http.server 8000     then open http://localhost:8000",
    "(Opening index.html as a file does not work: browsers run workers and WebAssembly only",
    "from a server. The camera needs https, or localhost.)",
    "",
    "After the first visit it opens and works with no network: sw.js keeps every file in the",
    "visitor's browser (browsers allow that on https, or localhost). Replace the whole folder",
    "to publish a new export: the page offers to reload into it.",
    "",
    "Serve .wasm files as application/wasm. The page carries its Content-Security-Policy in a",
    "<meta> tag; where you can, also send it as an HTTP header, so that the worker has it too:",
    `  Content-Security-Policy: ${policy}`,
    "",
    "MODEL_CARD.md says what the model is, how accurate it was found to be, and its limits.",
    "To use the model in your own page instead, see package/fewshot.d.ts and package/fewshot.js.",
    "",
  ].join("\n");
}
