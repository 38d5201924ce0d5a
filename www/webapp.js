// "Export web app": one ZIP that classifies photos and the webcam on any static server,
// offline, with nothing from elsewhere: app.html as index.html, the package (the files
// package.json lists), the weights, the model and its card. `read(path)` gives the bytes of
// one of this page's own files (the service worker has them, so it works offline too).
import { zipSync, strFromU8, strToU8 } from "./vendor/fflate.js";
import { WEIGHTS_FILE } from "./engine.js";

/** The ZIP's bytes. */
export async function webAppZip({ read, model, card }) {
  const pkg = JSON.parse(strFromU8(await read("package.json")));
  const html = strFromU8(await read("app.html"));
  const files = {
    "index.html": strToU8(html),
    "model.fewshot": [model, { level: 0 }],
    "MODEL_CARD.md": strToU8(card),
    "README.txt": strToU8(readme(html)),
    [WEIGHTS_FILE]: [await read(WEIGHTS_FILE), { level: 0 }],
  };
  for (const path of ["app.js", "app.css", ...pkg.files]) files[path] = await read(path);
  return zipSync(files, { level: 6 });
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
    "Serve .wasm files as application/wasm. The page carries its Content-Security-Policy in a",
    "<meta> tag; where you can, also send it as an HTTP header, so that the worker has it too:",
    `  Content-Security-Policy: ${policy}`,
    "",
    "MODEL_CARD.md says what the model is, how accurate it was found to be, and its limits.",
    "To use the model in your own page instead, see fewshot.d.ts and fewshot.js.",
    "",
  ].join("\n");
}
