// `./build.sh bench`, browser part: every figure measured in headless Chromium (WebGPU where it
// offers one), each the median of RUNS runs after a warm-up, with min and max. Prints a table
// and writes target/bench/browser.json (browser-other.json for another build of www/).
//
//  1. embedding speed, same page load, same 224x224 input: Fewshot (WebGPU, CPU; batch 1, 16),
//     tfjs-tflite on the same .tflite file, TF.js MobileNetV2 (tf.layers) on WebGL and WebGPU
//  2. head training: tests/bench/head.mjs, run after this by ./build.sh bench
//  3. time to a trained model: 100 clothing photos added to the page, to "Trained"
//  4. first load: bytes on a cold and a warm visit, time until ready
//  5. scale: tests/bench/page.mjs (a 10,000-photo project reopened), run by ./build.sh bench
//  6. learning quality: clothing-small train → test through the page's own pipeline
import { mkdirSync, writeFileSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { cpus } from "node:os";
import { gzipSync } from "node:zlib";
import { settled } from "../e2e/steps.mjs";
import { startServer, launch, shutDown, ROOT, SHARED } from "../e2e/browser.mjs";

// The first load counts the service worker's own requests too (it fetches the weights and
// keeps the page's files): without this Playwright reports only the page's, and whether the
// weights (2.8 MB gzipped) were counted depended on which of the two fetched them first.
process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = "1";

const RUNS = Number(process.env.RUNS || 3);
// Another build of www/ (node tests/bench/bench.mjs WWW) measures that one: "before", beside now.
const WWW = resolve(process.argv[2] || join(ROOT, "www"));
const QUICK = process.env.QUICK === "1";
const { server, origin } = await startServer({ "/bench/": join(ROOT, "tests/bench"), "/shared/": SHARED }, WWW);
const results = { runs: RUNS, machine: { cpu: cpus()[0]?.model, cores: cpus().length } };
const log = (...a) => console.error("bench:", ...a);

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], n: s.length };
}

// ONLY=speed: the embedding speed alone; ONLY=model: the first load and time to a model alone.
const ONLY = process.env.ONLY;

// ---------- 1: embedding speed, in one page load ----------
if (ONLY !== "model") {
  const { context } = await launch({ webgpu: true });
  const page = await context.newPage();
  page.on("console", (m) => process.env.VERBOSE && console.log(`[page] ${m.text()}`));
  await page.goto(`${origin}/bench/bench.html`);
  const photo = readFileSync(join(SHARED, "fixtures/parrot.rgb224.u8")).toString("base64");
  log("embedding speed");
  const speed = await page.evaluate(async ({ photo, runs, quick }) => {
    const out = { browser: navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0], rows: [] };
    const adapter = await navigator.gpu?.requestAdapter();
    out.adapter = adapter ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description || ""}`.trim() : "none";
    const rgb = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
    const rgba = new Uint8Array(224 * 224 * 4);
    for (let i = 0; i < 224 * 224; i++) rgba.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
    const batch16 = new Uint8Array(16 * rgba.length);
    for (let i = 0; i < 16; i++) batch16.set(rgba, i * rgba.length);
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    async function time(name, batch, fn, first) {
      const times = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await fn();
        times.push((performance.now() - t) / batch);
      }
      out.rows.push({ name, batch, firstMs: first, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), photosPerSecond: 1000 / median(times) });
    }
    const attempt = async (name, fn) => {
      try {
        await fn();
      } catch (e) {
        out.rows.push({ name, error: String(e.message || e) });
      }
    };

    // Fewshot
    const { default: init, ...pkg } = await import("/pkg/fewshot.js");
    const Backbone = pkg.Backbone ?? pkg.Fewshot; // Fewshot: its name before 2026-12
    await init();
    const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
    const fewshots = {};
    for (const device of ["webgpu", "cpu"]) {
      await attempt(`Fewshot ${device}`, async () => {
        const f = await Backbone.create(weights, device);
        fewshots[device] = f;
        let t = performance.now();
        await f.embed(rgba, 1, 224, 224);
        const first = performance.now() - t;
        await time(`Fewshot ${device}`, 1, () => f.embed(rgba, 1, 224, 224), first);
        if (!quick || device === "cpu") {
          t = performance.now();
          await f.embed(batch16, 16, 224, 224);
          await time(`Fewshot ${device}`, 16, () => f.embed(batch16, 16, 224, 224), performance.now() - t);
        }
      });
    }

    // Every core: the page's own pool (pool.js), this page's engine and helper workers, each
    // photo to whichever is free; the throughput of 8 rounds of photos, after a round that
    // starts the helpers.
    await attempt("Fewshot cpu, all cores", async () => {
      const { EmbedPool, engineCount } = await import("/worker/pool.js").catch(() => import("/pool.js")); // or an older build's flat www/
      const own = fewshots.cpu;
      const pool = new EmbedPool((...photo) => own.embedViews(...photo), weights.buffer.slice(0), engineCount("cpu"));
      const views = JSON.stringify([{}]);
      const round = (n) => Promise.all(Array.from({ length: n }, () => pool.embed(views, rgba, 224, 224)));
      let t = performance.now();
      await round(4 * pool.size);
      const first = performance.now() - t;
      await new Promise((ok) => setTimeout(ok, 1000)); // the helpers' backbones loaded
      await round(2 * pool.size);
      const n = 8 * pool.size;
      await time(`Fewshot cpu, all cores (${pool.size} engines)`, n, () => round(n), first);
      pool.close();
    });

    // tfjs-tflite on the very same file.
    await attempt("tfjs-tflite (same .tflite)", async () => {
      const tflite = window.tflite;
      // tfjs-tflite runs on its own wasm, but needs a TF.js backend for its tensors.
      await tf.setBackend("cpu");
      await tf.ready();
      tflite.setWasmPath("/bench/node_modules/@tensorflow/tfjs-tflite/wasm/");
      const model = await tflite.loadTFLiteModel("/weights/mobilenet_v2_1.0_224_quant.tflite");
      const input = tf.tensor(rgb, [1, 224, 224, 3], "int32");
      const run = () => {
        const y = model.predict(input);
        const data = y.dataSync();
        y.dispose();
        return data;
      };
      const t = performance.now();
      run();
      await time("tfjs-tflite (same .tflite)", 1, async () => run(), performance.now() - t);
    });

    // TF.js MobileNetV2 1.0 from tf.layers (Teachable Machine's stack); weights are random.
    function mobilenetV2() {
      const input = tf.input({ shape: [224, 224, 3] });
      const relu6 = () => tf.layers.reLU({ maxValue: 6 });
      const conv = (x, filters, k, stride, act = true) => {
        const y = tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding: "same" }).apply(x);
        return act ? relu6().apply(y) : y;
      };
      let x = conv(input, 32, 3, 2);
      let channels = 32;
      for (const [t, c, n, s] of [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]) {
        for (let i = 0; i < n; i++) {
          let y = t === 1 ? x : conv(x, channels * t, 1, 1);
          y = relu6().apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: i === 0 ? s : 1, padding: "same" }).apply(y));
          y = conv(y, c, 1, 1, false);
          x = i > 0 && channels === c ? tf.layers.add().apply([x, y]) : y;
          channels = c;
        }
      }
      x = conv(x, 1280, 1, 1);
      return tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(x) });
    }
    for (const backend of ["webgl", "webgpu"]) {
      await attempt(`TF.js ${backend}`, async () => {
        if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} unavailable`);
        await tf.ready();
        const model = mobilenetV2();
        for (const batch of quick && backend === "webgpu" ? [1] : [1, 16]) {
          const x = tf.randomUniform([batch, 224, 224, 3], -1, 1);
          const run = async () => {
            const y = model.predict(x);
            await y.data();
            y.dispose();
          };
          const t = performance.now();
          await run();
          await time(`TF.js ${backend}`, batch, run, performance.now() - t);
          x.dispose();
        }
      });
    }

    return out;
  }, { photo, runs: RUNS, quick: QUICK });
  results.speed = speed;
  await context.close();
}

// ---------- 1b: tfjs-tflite at its best: threaded, on a cross-origin isolated page ----------
if (ONLY !== "model") {
  const isolated = await startServer({ "/bench/": join(ROOT, "tests/bench") }, WWW, 0, { isolated: true });
  const { context } = await launch({ webgpu: false });
  const page = await context.newPage();
  await page.goto(`${isolated.origin}/bench/bench.html`);
  const photo = readFileSync(join(SHARED, "fixtures/parrot.rgb224.u8"));
  log("tfjs-tflite, threaded");
  const row = await page.evaluate(async ({ rgb, runs }) => {
    const threads = navigator.hardwareConcurrency;
    const name = `tfjs-tflite, ${threads} threads (cross-origin isolated)`;
    try {
      if (!crossOriginIsolated) throw new Error("the page is not cross-origin isolated");
      await tf.setBackend("cpu");
      tflite.setWasmPath("/bench/node_modules/@tensorflow/tfjs-tflite/wasm/");
      const model = await tflite.loadTFLiteModel("/weights/mobilenet_v2_1.0_224_quant.tflite", { numThreads: threads });
      const input = tf.tensor(rgb, [1, 224, 224, 3], "int32");
      const run = () => tf.tidy(() => model.predict(input).dataSync());
      let t = performance.now();
      run();
      const firstMs = performance.now() - t;
      const times = [];
      for (let i = 0; i < runs; i++) {
        t = performance.now();
        run();
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const medianMs = times[Math.floor(times.length / 2)];
      return { name, batch: 1, firstMs, medianMs, minMs: times[0], maxMs: times.at(-1), photosPerSecond: 1000 / medianMs };
    } catch (e) {
      return { name, error: String(e.message || e) };
    }
  }, { rgb: [...photo], runs: Math.max(RUNS, 10) });
  results.speed.rows.push(row);
  await context.close();
  await shutDown(isolated.server);
}

const ONLY_SPEED = ONLY === "speed";

// ---------- 3 + 4: first load and time to a trained model, through the page ----------
if (!ONLY_SPEED) {
  log("first load and time to a trained model");
  const { context } = await launch({ webgpu: true });
  const bytesOf = async (responses) => {
    let total = 0;
    for (const r of responses) {
      const sizes = await r.request().sizes().catch(() => null);
      if (sizes) total += sizes.responseBodySize + sizes.responseHeadersSize;
    }
    return total;
  };
  const visit = async () => {
    const page = await context.newPage();
    const responses = [];
    // From the network only, the service worker's included (a response it answered from its
    // cache travelled no further).
    const count = (r) => /^https?:/.test(r.url()) && !r.fromServiceWorker() && responses.push(r);
    context.on("response", count);
    const t = Date.now();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    const seconds = (Date.now() - t) / 1000;
    await page.waitForTimeout(500);
    context.off("response", count);
    return { page, seconds, bytes: await bytesOf(responses), requests: responses.length };
  };
  const cold = await visit();
  await cold.page.close();
  const warm = await visit();
  results.firstLoad = {
    coldBytes: cold.bytes, coldSeconds: cold.seconds, coldRequests: cold.requests,
    warmBytes: warm.bytes, warmSeconds: warm.seconds, warmRequests: warm.requests,
    wasmBytes: readFileSync(join(WWW, "pkg/fewshot_bg.wasm")).length,
    wasmGzipBytes: gzipSync(readFileSync(join(WWW, "pkg/fewshot_bg.wasm")), { level: 9 }).length,
  };
  const page = warm.page;
  const labels = readdirSync(join(SHARED, "datasets/clothing-small/train")).sort();
  const cards = page.locator(".class-card");
  while ((await cards.count()) < labels.length) await page.click("#add-class");
  for (let i = 0; i < labels.length; i++) await cards.nth(i).locator(".class-name").fill(labels[i]);
  const t = Date.now();
  for (let i = 0; i < labels.length; i++) {
    const dir = join(SHARED, "datasets/clothing-small/train", labels[i]);
    await cards.nth(i).locator(".file-input").setInputFiles(readdirSync(dir).sort().slice(0, 10).map((f) => join(dir, f)));
  }
  // Every photo embedded, as the cards count them (a grid far from the screen holds no thumbnails).
  await settled(page, labels.map(() => 10), 600_000);
  const embedded = (Date.now() - t) / 1000;
  await page.click("#train");
  await page.waitForFunction(() => /^Trained/.test(document.querySelector("#train-status").textContent), null, { timeout: 300_000 });
  results.timeToModel = { photos: 100, classes: 10, device: await page.getAttribute("body", "data-engine"), embedSeconds: embedded, totalSeconds: (Date.now() - t) / 1000 };
  await context.close();
}

// ---------- 6: learning quality through the page's own pipeline ----------
if (!QUICK && !ONLY) {
  log("learning quality through the page (300 train photos, 372 test photos)");
  const { context } = await launch({ webgpu: true });
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
  const root = join(SHARED, "datasets/clothing-small");
  const labels = readdirSync(join(root, "train")).sort();
  const list = (split) => labels.flatMap((l, c) => readdirSync(join(root, split, l)).sort().map((f) => [`/shared/datasets/clothing-small/${split}/${l}/${f}`, c]));
  const quality = await page.evaluate(async ({ labels, train, test }) => {
    // The page's own pipeline: its engine client and worker (decode once, embed, learn).
    // This build's modules, or an older build's (www/ flat).
    const { EngineClient } = await import("/seam/engine.js").catch(() => import("/engine.js"));
    const { Op } = await import("/seam/protocol.js").catch(() => import("/protocol.js"));
    const client = new EngineClient();
    await client.load({ device: document.body.dataset.engine });
    await client.call(Op.SetSettings, { settings: { mirror: false } });
    await client.call(Op.SetClasses, {
      classes: labels.map((name, c) => ({ id: `c${c}`, name, photos: train.flatMap(([, k], i) => (k === c ? [`p${i}`] : [])) })),
    });
    for (const [i, [url]] of train.entries()) await client.call(Op.AddPhoto, { photo: `p${i}`, image: await (await fetch(url)).blob() });
    await client.call(Op.Train);
    let correct = 0;
    for (const [url, c] of test) {
      const [best] = (await client.call(Op.Predict, { image: await (await fetch(url)).blob() })).predictions;
      if (best.class === c) correct++;
    }
    client.restart();
    return { accuracy: correct / test.length, train: train.length, test: test.length };
  }, { labels, train: list("train"), test: list("test") });
  results.quality = { ...quality, reference: 0.806 };
  await context.close();
}

// ---------- 5: scale, a 10,000-photo project ----------
server.close();
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
const OUT = process.argv[2] ? "browser-other.json" : "browser.json";
writeFileSync(join(ROOT, "target/bench", OUT), JSON.stringify(results, null, 1));

// ---------- the table ----------
const s = results.speed ?? { rows: [] };
const mb = (b) => (b / 1e6).toFixed(2) + " MB";
console.log(`\nMachine: ${results.machine.cpu}, ${results.machine.cores} cores. Browser: ${s.browser} headless; WebGPU adapter: ${s.adapter}; ${RUNS} runs each, after a warm-up\n`);
console.log("| embedding (224x224) | batch | first (s) | ms/photo median [min-max] | photos/s |");
console.log("| --- | ---: | ---: | --- | ---: |");
const ok = s.rows.filter((r) => !r.error);
for (const r of s.rows) {
  if (r.error) console.log(`| ${r.name} | | | error: ${r.error} | |`);
  else console.log(`| ${r.name} | ${r.batch} | ${(r.firstMs / 1000).toFixed(2)} | ${r.medianMs.toFixed(1)} [${r.minMs.toFixed(1)}-${r.maxMs.toFixed(1)}] | ${r.photosPerSecond.toFixed(1)} |`);
}
const best = (prefix) => Math.max(0, ...ok.filter((r) => r.name.startsWith(prefix)).map((r) => r.photosPerSecond));
const ours = best("Fewshot");
const ourGpu = best("Fewshot webgpu");
console.log(`\nFewshot's best: ${ours.toFixed(1)} photos/s (WebGPU: ${ourGpu.toFixed(1)}). Ratios, Fewshot best / other:`);
for (const other of ["tfjs-tflite", "TF.js webgl", "TF.js webgpu"]) {
  const theirs = best(other);
  console.log(`  ${other}: ${theirs ? (ours / theirs).toFixed(2) + "x" : "n/a"}${theirs ? `  (Fewshot WebGPU / it: ${(ourGpu / theirs).toFixed(2)}x)` : ""}`);
}
const f = results.firstLoad;
if (f) {
console.log(`\nwasm: ${mb(f.wasmBytes)}, ${mb(f.wasmGzipBytes)} gzipped`);
console.log(`first load: cold ${mb(f.coldBytes)} in ${f.coldRequests} requests, ready after ${f.coldSeconds.toFixed(1)} s; warm ${(f.warmBytes / 1000).toFixed(1)} KB in ${f.warmRequests} requests, ready after ${f.warmSeconds.toFixed(1)} s`);
const m = results.timeToModel;
console.log(`time to a trained model: ${m.photos} photos, ${m.classes} classes, on ${m.device}: ${m.totalSeconds.toFixed(1)} s (embedding ${m.embedSeconds.toFixed(1)} s)`);
}
if (results.quality) console.log(`learning quality (page pipeline): ${(results.quality.accuracy * 100).toFixed(1)} % on ${results.quality.test} test photos (reference 80.6 %)`);
console.log(`\nall figures: target/bench/${OUT}`);
