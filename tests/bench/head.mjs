// `node tests/bench/head.mjs`: the head alone, in headless Chromium on the wasm CPU path —
// training to convergence, then all of learning (training, cross-validation, "none of these"
// and near-duplicates) on 100 / 1,000 / 10,000 synthetic embeddings of 10 classes, each the median of RUNS runs (1 for 10,000). Prints a table and writes
// target/bench/head.json with head_train_1000_s and head_train_10000_s.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, launch, ROOT } from "../e2e/browser.mjs";

const RUNS = Number(process.env.RUNS || 3);
const { server, origin } = await startServer({ "/bench/": join(ROOT, "tests/bench") });
const { context } = await launch({ webgpu: false });
const page = await context.newPage();
await page.goto(`${origin}/bench/bench.html`);
const rows = await page.evaluate(async (runs) => {
  const { default: init, Project, ...pkg } = await import("/pkg/fewshot.js");
  const Backbone = pkg.Backbone ?? pkg.Fewshot; // Fewshot: its name before 2026-12
  await init();
  const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
  const f = await Backbone.create(weights, "cpu");
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = [];
  for (const n of [100, 1000, 10000]) {
    const classes = 10;
    // A project of one view a photo (no mirroring), its embeddings restored as after a reload.
    const project = new Project();
    project.setSettings({ mirror: false, zoom: false });
    const specs = Array.from({ length: classes }, (_, c) => ({ id: `c${c}`, name: `c${c}`, photos: [] }));
    for (let i = 0; i < n; i++) specs[i % classes].photos.push(`p${i}`);
    project.setClasses(specs);
    for (let i = 0; i < n; i++) {
      const e = new Float32Array(1280);
      for (let d = 0; d < 1280; d++) e[d] = Math.random() + (d % classes === i % classes ? 0.5 : 0);
      (project.setEmbeddings ?? project.restorePhoto).call(project, `p${i}`, e); // restorePhoto: its name before 2026-12
    }
    const train = [];
    const check = [];
    let steps = 0;
    for (let r = 0; r < (n === 10000 ? 1 : runs); r++) {
      let t = performance.now();
      let trained = 0;
      // Stop at the first fold: training alone.
      const result = await project.learn(f, (p) => {
        if (p.phase === "validating" && !trained) {
          trained = performance.now();
          project.stop();
        }
      });
      train.push((trained || performance.now()) - t);
      steps = result.history.length;
      t = performance.now();
      await project.learn(f, null);
      check.push(performance.now() - t);
    }
    out.push({ embeddings: n, steps, trainSeconds: median(train) / 1000, trainAndCheckSeconds: median(check) / 1000 });
  }
  return out;
}, RUNS);
await context.close();
server.close();
console.log("| head, 10 classes, wasm CPU | steps | train (s) | all of learning (s) |\n| --- | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.embeddings} embeddings | ${r.steps} | ${r.trainSeconds.toFixed(3)} | ${r.trainAndCheckSeconds.toFixed(2)} |`);
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
const by = Object.fromEntries(rows.map((r) => [r.embeddings, r]));
writeFileSync(
  join(ROOT, "target/bench/head.json"),
  JSON.stringify({ rows, head_train_1000_s: by[1000].trainSeconds, head_train_10000_s: by[10000].trainSeconds }, null, 2),
);
