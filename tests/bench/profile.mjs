// `PROFILE=1 ./build.sh wasm && node tests/bench/profile.mjs`: where the browser's time goes
// when the wasm CPU engine embeds photos. Chromium's own sampling profiler (DevTools protocol)
// runs while the engine embeds PHOTOS (default 30) random 224x224 photos one at a time; the
// samples are summed by function, and the functions taking the most time are printed with
// their share. Needs a build that kept the names (PROFILE=1), or every wasm function is
// "wasm-function[N]".
import { startServer, launch } from "../e2e/browser.mjs";

const PHOTOS = Number(process.env.PHOTOS || 30);

/** `_ZN7fewshot8backbone7kernels9Pointwise3run17h…E` → `fewshot::backbone::kernels::Pointwise::run`. */
function demangle(name) {
  const m = /^_ZN(.*)E$/.exec(name);
  if (!m) return name.replace(/::h[0-9a-f]{16}/, "");
  const parts = [];
  for (let rest = m[1]; rest; ) {
    const len = /^(\d+)/.exec(rest);
    if (!len) break;
    const n = Number(len[1]);
    parts.push(rest.slice(len[1].length, len[1].length + n));
    rest = rest.slice(len[1].length + n);
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1))) parts.pop();
  return parts.join("::").replace(/\$LT\$/g, "<").replace(/\$GT\$/g, ">").replace(/\$u20\$/g, " ").replace(/\.\./g, "::");
}

const { origin } = await startServer();
const { context } = await launch({ webgpu: false });
const page = await context.newPage();
await page.goto(`${origin}/?device=cpu`);
await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
await page.evaluate(async () => {
  const pkg = await import("/pkg/fewshot.js");
  await pkg.default();
  const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
  window.engine = await (pkg.Backbone ?? pkg.Fewshot).create(weights, "cpu");
  window.photo = new Uint8Array(224 * 224 * 4).map((_, i) => (i * 2654435761) >>> 24);
  await window.engine.embed(window.photo, 1, 224, 224);
});
const cdp = await context.newCDPSession(page);
await cdp.send("Profiler.enable");
await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
await cdp.send("Profiler.start");
const ms = await page.evaluate(async (n) => {
  const t = performance.now();
  for (let i = 0; i < n; i++) await window.engine.embed(window.photo, 1, 224, 224);
  return (performance.now() - t) / n;
}, PHOTOS);
const { profile } = await cdp.send("Profiler.stop");
await context.close();

const byName = new Map();
let total = 0;
for (const node of profile.nodes) {
  const name = demangle(node.callFrame.functionName || `(${node.callFrame.url ? "anonymous" : "program"})`);
  byName.set(name, (byName.get(name) || 0) + (node.hitCount || 0));
  total += node.hitCount || 0;
}
console.log(`${PHOTOS} photos, ${ms.toFixed(1)} ms a photo; self time by function (${total} samples):`);
for (const [name, hits] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`${((100 * hits) / total).toFixed(1).padStart(6)} %  ${name}`);
}
process.exit(0);
