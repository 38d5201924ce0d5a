// `./build.sh bench`, last step: the figures the speed and learning issues track, gathered from
// what the steps before wrote under target/bench (browser.json, head.json, litert.json,
// browsers.json, learning.json, native.txt) into target/bench/summary.json. A figure a step did not measure is null, never
// a guess.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);

const dir = join(ROOT, "target/bench");
const json = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), "utf8")) : {});
const browser = json("browser.json");
const head = json("head.json");
const litert = json("litert.json");
const browsers = json("browsers.json");
// `fewshot eval --foreign --json`: one result, the model of every training photo.
// "None of these" at 5, 10 and 30 photos a class (learning_bench): the worst of the sizes.
const sizes = json("learning.json").results ?? [];
const worst = (key, pick) => (sizes.some((r) => typeof r[key] === "number") ? pick(...sizes.map((r) => r[key]).filter((v) => typeof v === "number")) : null);
const native = existsSync(join(dir, "native.txt")) ? readFileSync(join(dir, "native.txt"), "utf8") : "";

const rows = (browser.speed?.rows || []).filter((r) => !r.error);
const row = (test) => rows.find((r) => test(r.name) && r.batch === 1);
const ms = (r) => r?.medianMs ?? null;
const perSecond = (r) => r?.photosPerSecond ?? null;
// `fewshot bench`: "cpu: Fewshot's kernels, BEST (…)   first   batch 1/s   batch 16/s", the first
// such row (the best instructions this processor has; the portable ones follow).
const kernels = /^cpu: Fewshot's kernels.*\s([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$/m.exec(native);
const tflite = rows.filter((r) => r.name.startsWith("tfjs-tflite"));
const allCores = rows.find((r) => r.name.startsWith("Fewshot cpu, all cores"));

const summary = {
  cores: browser.machine?.cores ?? null,
  fewshot_cpu_1thread_ms: ms(row((n) => n === "Fewshot cpu")),
  fewshot_cpu_all_cores_photos_per_s: perSecond(allCores),
  tflite_1thread_ms: ms(row((n) => n === "tfjs-tflite (same .tflite)")),
  tflite_best_photos_per_s: tflite.length ? Math.max(...tflite.map((r) => r.photosPerSecond)) : null,
  fewshot_webgpu_ms: ms(row((n) => n === "Fewshot webgpu")),
  tfjs_webgpu_ms: ms(row((n) => n === "TF.js webgpu")),
  native_fewshot_1thread_ms: kernels ? 1000 / Number(kernels[2]) : null,
  native_litert_1thread_ms: litert.one_thread_ms ?? null,
  hundred_photos_to_model_s: browser.timeToModel?.totalSeconds ?? null,
  // The head trains by L-BFGS to convergence (not 50 epochs): the time to a trained head.
  head_train_1000x50_s: head.head_train_1000_s ?? null,
  head_train_10000x50_s: head.head_train_10000_s ?? null,
  first_load_bytes: browser.firstLoad?.coldBytes ?? null,
  // The same photo on the CPU path, one thread, in each browser tested (tests/bench/browsers.mjs).
  chromium_cpu_1thread_ms: browsers.chromium_cpu_1thread_ms ?? null,
  firefox_cpu_1thread_ms: browsers.firefox_cpu_1thread_ms ?? null,
  webkit_cpu_1thread_ms: browsers.webkit_cpu_1thread_ms ?? null,
  // "None of these": the share of photos from elsewhere flagged (the lowest of 5, 10 and 30
  // photos a class), of the test photos and of the harder test photos (tests/probe/harder.py:
  // other crops, light, backgrounds; the highest of the sizes).
  unfamiliar_flagged: worst("unfamiliar_flagged", Math.min),
  familiar_flagged: worst("familiar_flagged", Math.max),
  familiar_flagged_hard: worst("familiar_flagged_hard", Math.max),
};
for (const [key, value] of Object.entries(summary)) if (typeof value === "number") summary[key] = Number(value.toPrecision(4));
writeFileSync(join(dir, "summary.json"), JSON.stringify(summary, null, 1) + "\n");
console.log(`target/bench/summary.json:\n${JSON.stringify(summary, null, 1)}`);
