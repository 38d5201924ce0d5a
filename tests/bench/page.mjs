// `node tests/bench/page.mjs [WWW]`: the page's own costs, in headless Chromium on the CPU path
// (no WebGPU, so that every figure is the same engine), for the www/ folder given (default this
// checkout's; another build of it measures "before"). Prints one JSON object and a table:
//  - engineMsPerPhoto: the engine alone embedding one clothing photo in every view the page
//    uses (the wasm module called directly, median of 5 after a warm-up)
//  - pageMsPerPhoto: the same photos added through the page (files chosen on a class card
//    until every thumbnail is ready), per photo
//  - a generated project of N photos (default 10,000) opened by a reload: time until every
//    class shows its count, time until the engine has every embedding (training possible),
//    JS heap, DOM nodes, object URLs never counted (not observable), IndexedDB size.
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { mkdirSync } from "node:fs";
import { startServer, launch, SHARED, ROOT } from "../e2e/browser.mjs";

const www = process.argv[2] ? resolve(process.argv[2]) : undefined;
const N = Number(process.env.PHOTOS || 10000);
const ADD = Number(process.env.ADD || 30);
const { server, origin } = await startServer({ "/shared/": SHARED }, www);
const out = { www: www || "www" };
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
const dir = join(SHARED, "datasets/clothing-small/train/shirt");
const files = readdirSync(dir).sort().slice(0, ADD).map((f) => join(dir, f));

// 1. The engine alone, then the same photos through the page, in one profile.
{
  const { context } = await launch({ webgpu: false });
  const page = await context.newPage();
  await page.goto(`${origin}/?device=cpu`);
  await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
  out.engineMsPerPhoto = await page.evaluate(async (url) => {
    const pkg = await import("/pkg/fewshot.js");
    await pkg.default();
    const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
    const bitmap = await createImageBitmap(await (await fetch(url)).blob());
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    const { data, width, height } = canvas.getContext("2d").getImageData(0, 0, bitmap.width, bitmap.height);
    const times = [];
    if (pkg.Project) {
      const f = await (pkg.Backbone ?? pkg.Fewshot).create(weights, "cpu");
      const project = new pkg.Project();
      project.setClasses([{ id: "c", name: "c", photos: ["p"] }]);
      for (let i = 0; i < 6; i++) {
        const t = performance.now();
        await project.addPhoto(f, "p", data, width, height);
        times.push(performance.now() - t);
      }
    } else {
      // The first version's API: one call a view.
      const f = await (pkg.Backbone ?? pkg.Fewshot).create(weights, "cpu");
      const views = (pkg.Backbone ?? pkg.Fewshot).views({});
      for (let i = 0; i < 6; i++) {
        const t = performance.now();
        for (const view of views) await f.embed(data, width, height, view);
        times.push(performance.now() - t);
      }
    }
    return times.slice(1).sort((a, b) => a - b)[2];
  }, `/shared/${dir.slice(SHARED.length + 1)}/${readdirSync(dir).sort()[0]}`);
  const t = Date.now();
  await page.locator(".class-card").first().locator(".file-input").setInputFiles(files);
  await page.waitForFunction((n) => document.querySelector(".class-card .count").textContent === `${n} photos`, ADD, { timeout: 600_000, polling: 20 });
  out.pageMsPerPhoto = (Date.now() - t) / ADD;
  await context.close();
}

// 2. A big project, opened by a reload.
{
  const { context } = await launch({ webgpu: false });
  const page = await context.newPage();
  await page.goto(`${origin}/?device=cpu`);
  await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
  await page.evaluate(async (n) => {
    // Written straight into IndexedDB in the page's own format, as if added one by one.
    // This build's modules, or an older build's (www/ flat).
    const store = await import("/page/store.js").catch(() => import("/store.js"));
    const embeddings = await import("/worker/embeddings.js").catch(() => store);
    const { state } = await import("/page/state.js").catch(() => import("/state.js"));
    const classes = Array.from({ length: 10 }, (_, i) => ({ id: crypto.randomUUID(), name: `class ${i}`, photos: [] }));
    const canvas = new OffscreenCanvas(448, 336);
    const g = canvas.getContext("2d");
    const images = [];
    for (let i = 0; i < 20; i++) {
      g.fillStyle = `hsl(${(i * 37) % 360} 60% 50%)`;
      g.fillRect(0, 0, 448, 336);
      images.push(await canvas.convertToBlob({ type: "image/jpeg", quality: 0.85 }));
    }
    // This version's format (embeddings kept apart, under the engine's viewsKey), or the first
    // version's (in the photo record: an array a view, and a variantsKey of the views).
    const first = !embeddings.putEmbeddings;
    const oldKey = first ? JSON.stringify((await (await import("/engine.js")).views({})).views) : null;
    for (let i = 0; i < n; i++) {
      const e = () => new Float32Array(1280).map(() => Math.random());
      const id = crypto.randomUUID();
      if (first) {
        await store.putPhoto({ id, added: i, image: images[i % 20], embeddings: [e(), e()], variantsKey: oldKey }, classes[i % 10].id);
      } else {
        await store.putPhoto({ id, added: i, image: images[i % 20] }, classes[i % 10].id);
        await embeddings.putEmbeddings(id, state.viewsKey, new Float32Array(1280 * JSON.parse(state.viewsKey).length).map(() => Math.random()));
      }
    }
    await store.putMeta({ ...state, classes });
  }, N);
  out.indexedDbBytes = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
  const t = Date.now();
  await page.reload();
  await page.waitForFunction((n) => {
    const counts = [...document.querySelectorAll(".class-card .count")].map((c) => parseInt(c.textContent, 10) || 0);
    return counts.reduce((a, b) => a + b, 0) === n;
  }, N, { timeout: 600_000, polling: 20 });
  out.openShownSeconds = (Date.now() - t) / 1000;
  // ... and until the first class's thumbnails are drawn (the grids near the screen fill
  // after the counts show).
  await page.waitForFunction(() => [...document.querySelectorAll(".class-card .thumb img")].some((img) => img.complete && img.naturalWidth > 0), null, { timeout: 600_000, polling: 20 });
  out.openThumbsSeconds = (Date.now() - t) / 1000;
  await page.waitForFunction(() => document.body.dataset.engine === "cpu" && !document.querySelector(".thumb.busy"), null, { timeout: 600_000, polling: 50 });
  out.openReadySeconds = (Date.now() - t) / 1000;
  out.domNodes = await page.evaluate(() => document.getElementsByTagName("*").length);
  await page.screenshot({ path: join(ROOT, `target/bench/open-${N}.png`) });
  const cdp = await context.newCDPSession(page);
  await cdp.send("HeapProfiler.collectGarbage");
  out.jsHeapUsedBytes = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
  out.photos = N;

  // 3. Training that project: the main thread's longest task while it trains, and how long
  // Stop takes to act, pressed at three moments (early in training, later, while checking).
  if (await page.$("#stop")) {
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration))).observe({ type: "longtask" });
    });
    // PROFILE=1: a CPU profile of the page's main thread while it trains, summed by function.
    const profiler = process.env.PROFILE ? await context.newCDPSession(page) : null;
    if (profiler) await profiler.send("Profiler.enable").then(() => profiler.send("Profiler.start"));
    const tracer = await context.newCDPSession(page);
    const events = [];
    tracer.on("Tracing.dataCollected", ({ value }) => events.push(...value));
    const traced = new Promise((r) => tracer.once("Tracing.tracingComplete", r));
    await tracer.send("Tracing.start", { categories: "devtools.timeline,disabled-by-default-devtools.timeline,v8", transferMode: "ReportEvents" });
    const trainFully = Date.now();
    await page.click("#train");
    await page.waitForFunction(() => /^Trained/.test(document.querySelector("#train-status").textContent), null, { timeout: 900_000, polling: 50 });
    out.trainSeconds = (Date.now() - trainFully) / 1000;
    await tracer.send("Tracing.end");
    await traced;
    // Each task of the page's main thread, by the clock and on the CPU (the trace's thread
    // time): on a machine of two cores, with the worker training on one, a task can wait for a
    // core for longer than it runs.
    // (The page's renderer is the one whose main thread ran the most tasks.)
    const mains = events.filter((e) => e.name === "thread_name" && e.args?.name === "CrRendererMain");
    const tasksOf = (m) => events.filter((e) => e.pid === m.pid && e.tid === m.tid && e.name === "RunTask" && e.dur);
    const tasks = mains.map(tasksOf).reduce((a, b) => (b.length > a.length ? b : a), []);
    const longest = tasks.reduce((a, b) => (b.dur > a.dur ? b : a), { dur: 0, tdur: 0 });
    out.longestTaskWallMs = longest.dur / 1000;
    out.longestTaskCpuOfItMs = (longest.tdur ?? 0) / 1000;
    out.longestTaskCpuMs = Math.max(0, ...tasks.map((t) => (t.tdur ?? 0) / 1000));
    if (profiler) {
      const { profile } = await profiler.send("Profiler.stop");
      const self = new Map();
      const interval = (profile.endTime - profile.startTime) / profile.samples.length / 1000;
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      for (const id of profile.samples) {
        const { functionName, url, lineNumber } = byId.get(id).callFrame;
        const key = `${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`;
        self.set(key, (self.get(key) || 0) + interval);
      }
      console.log("main thread while training, self time (ms):");
      for (const [key, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${ms.toFixed(0).padStart(6)}  ${key}`);
    }
    out.longestTaskMs = await page.evaluate(() => Math.max(0, ...window.longTasks));
    out.stopMs = [];
    for (const when of ["training", "later", "validating"]) {
      await page.click("#train");
      await page.waitForFunction(
        (when) => {
          const text = document.querySelector("#train-status").textContent;
          if (when === "validating") return /Checking accuracy/.test(text);
          const step = Number(text.match(/step (\d+)/)?.[1] ?? -1);
          return when === "training" ? step >= 1 : step >= 10;
        },
        when,
        { timeout: 900_000, polling: 10 },
      );
      out.stopMs.push(
        await page.evaluate(
          () =>
            new Promise((resolve) => {
              const t = performance.now();
              document.querySelector("#stop").click();
              const check = () => (document.querySelector("#stop").hidden ? resolve(performance.now() - t) : requestAnimationFrame(check));
              check();
            }),
        ),
      );
    }
  }
  await context.close();
}
server.close();
const mb = (b) => (b / 1e6).toFixed(1) + " MB";
console.log(JSON.stringify(out));
console.log(`| page (${out.www}) | figure |\n| --- | ---: |`);
console.log(`| engine alone, one photo in every view (ms) | ${out.engineMsPerPhoto.toFixed(1)} |`);
console.log(`| through the page, per photo (ms) | ${out.pageMsPerPhoto.toFixed(1)} (${(out.pageMsPerPhoto / out.engineMsPerPhoto).toFixed(2)}x) |`);
console.log(`| ${N} photos: reopened until every count shows (s) | ${out.openShownSeconds.toFixed(2)} |`);
console.log(`| ${N} photos: reopened until the thumbnails in view show (s) | ${out.openThumbsSeconds.toFixed(2)} |`);
console.log(`| ${N} photos: reopened until trainable (s) | ${out.openReadySeconds.toFixed(2)} |`);
console.log(`| ${N} photos: JS heap of the page, after GC | ${mb(out.jsHeapUsedBytes)} |`);
console.log(`| ${N} photos: DOM elements | ${out.domNodes} |`);
console.log(`| ${N} photos: IndexedDB | ${mb(out.indexedDbBytes)} |`);
if (out.stopMs) {
  console.log(`| ${N} photos: train and check, from the click (s) | ${out.trainSeconds.toFixed(2)} |`);
  console.log(`| ${N} photos: longest main-thread task while training (ms) | ${out.longestTaskMs.toFixed(0)} |`);
  console.log(`| ${N} photos: the same in the trace, by the clock / on the CPU (ms) | ${out.longestTaskWallMs.toFixed(0)} / ${out.longestTaskCpuOfItMs.toFixed(0)} |`);
  console.log(`| ${N} photos: most CPU time of one main-thread task while training (ms) | ${out.longestTaskCpuMs.toFixed(0)} |`);
  console.log(`| ${N} photos: Stop, pressed early / later in training / while checking (ms) | ${out.stopMs.map((x) => x.toFixed(0)).join(" / ")} |`);
}
