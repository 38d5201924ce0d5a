// `./build.sh bench`: the same photo embedded by Fewshot's CPU path, one thread, in each browser
// the page is tested in (Chromium, Firefox ESR, WebKitGTK), in the same run, so that a slow
// path in one of them shows: target/bench/browsers.json, and summary.json's
// chromium_cpu_1thread_ms, firefox_cpu_1thread_ms and webkit_cpu_1thread_ms. A browser that is
// not installed gives null, never a guess.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "../e2e/node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js";
import { launch, startServer, shutDown, tempDir, ROOT } from "../e2e/browser.mjs";
import { webkitMissing, webkitSession } from "../e2e/webdriver.mjs";

const RUNS = 10;
/** In the page: load the engine on the CPU, embed one 224x224 picture (the same in every
 * browser) once to warm up, then RUNS times; the median in ms. */
const measure = async (runs) => {
  const { default: init, ...pkg } = await import("/pkg/fewshot.js");
  const Backbone = pkg.Backbone ?? pkg.Fewshot;
  await init();
  const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
  const backbone = await Backbone.create(weights, "cpu");
  const rgba = new Uint8Array(224 * 224 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 251));
  await backbone.embed(rgba, 1, 224, 224);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await backbone.embed(rgba, 1, 224, 224);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)];
};

const { server, origin } = await startServer();
const result = { runs: RUNS, chromium_cpu_1thread_ms: null, firefox_cpu_1thread_ms: null, webkit_cpu_1thread_ms: null };
const attempt = async (key, fn) => {
  try {
    result[key] = await fn();
  } catch (e) {
    console.log(`${key}: ${e.message}`);
  }
};
await attempt("chromium_cpu_1thread_ms", async () => {
  const { context } = await launch({ webgpu: false });
  const page = await context.newPage();
  await page.goto(`${origin}/package/example.html`);
  try {
    return await page.evaluate(measure, RUNS);
  } finally {
    await context.close();
  }
});
await attempt("firefox_cpu_1thread_ms", async () => {
  if (!existsSync("/usr/bin/firefox-esr")) return null;
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: "/usr/bin/firefox-esr", headless: true, userDataDir: tempDir("firefox") });
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/package/example.html`);
    return await page.evaluate(measure, RUNS);
  } finally {
    await browser.close();
  }
});
await attempt("webkit_cpu_1thread_ms", async () => {
  if (webkitMissing()) return null;
  const wk = await webkitSession();
  try {
    await wk.url(`${origin}/package/example.html`);
    return await wk.scriptAsync(`const done = arguments[arguments.length - 1]; (${measure})(${RUNS}).then(done, (e) => done(null));`);
  } finally {
    await wk.close();
  }
});
shutDown(server);
for (const [key, value] of Object.entries(result)) if (typeof value === "number") result[key] = Number(value.toFixed(1));
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
writeFileSync(join(ROOT, "target/bench/browsers.json"), JSON.stringify(result, null, 1) + "\n");
console.log(`one photo, Fewshot's CPU path, one thread, median of ${RUNS}: Chromium ${result.chromium_cpu_1thread_ms} ms, Firefox ESR ${result.firefox_cpu_1thread_ms} ms, WebKitGTK ${result.webkit_cpu_1thread_ms} ms`);
process.exit(0);
