// Browser figures, printed and written to target/bench/browser.json: in one page load of
// headless Chromium, the wasm engine's embedding speed on WebGPU and on the CPU (first photo,
// then the median of several), and head training time. Run by `./build.sh bench`.
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, launch, ROOT, SHARED } from "./browser.mjs";

const RUNS = Number(process.env.RUNS || 5);
const { server, origin } = await startServer();
const { context } = await launch({ webgpu: true });
const page = await context.newPage();
page.on("console", (m) => process.env.VERBOSE && console.log(`[page] ${m.text()}`));
await page.goto(`${origin}/example.html?bench`);
const photo = readFileSync(join(SHARED, "fixtures/parrot.rgb224.u8")).toString("base64");

const results = await page.evaluate(async ({ photo, runs }) => {
  const { default: init, Fewshot } = await import("/pkg/fewshot.js");
  await init();
  const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
  const rgb = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
  const rgba = new Uint8Array(224 * 224 * 4);
  for (let i = 0; i < 224 * 224; i++) rgba.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
  const adapter = await navigator.gpu?.requestAdapter();
  const info = adapter?.info || {};
  const out = { userAgent: navigator.userAgent, adapter: adapter ? `${info.vendor} ${info.architecture} ${info.description || ""}`.trim() : "none", devices: {} };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const device of ["cpu", "webgpu"]) {
    try {
      let t = performance.now();
      const fewshot = await Fewshot.create(weights, device);
      const createMs = performance.now() - t;
      t = performance.now();
      await fewshot.embed(rgba, 224, 224, {});
      const firstMs = performance.now() - t;
      const times = [];
      for (let i = 0; i < runs; i++) {
        t = performance.now();
        await fewshot.embed(rgba, 224, 224, {});
        times.push(performance.now() - t);
      }
      out.devices[device] = { createMs, firstMs, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times) };
    } catch (e) {
      out.devices[device] = { error: e.message };
    }
  }
  return out;
}, { photo, runs: RUNS });

console.log(`browser: ${results.userAgent.match(/Chrome\/[\d.]+/)?.[0]}; WebGPU adapter: ${results.adapter}`);
console.log("device    first photo (s)   steady, median [min-max] (ms/photo)");
for (const [device, r] of Object.entries(results.devices)) {
  if (r.error) console.log(`${device.padEnd(9)} error: ${r.error}`);
  else console.log(`${device.padEnd(9)} ${(r.firstMs / 1000).toFixed(2).padStart(15)}   ${r.medianMs.toFixed(0)} [${r.minMs.toFixed(0)}-${r.maxMs.toFixed(0)}]`);
}
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
writeFileSync(join(ROOT, "target/bench/browser.json"), JSON.stringify(results, null, 1));
await context.close();
server.close();
