// The engine's home: a module Web Worker that owns the wasm instance, so that embedding and
// training never freeze the page. The page talks to it through engine.js only.
//
// Request:  { id, op, args }          Reply: { id, ok: true, result } | { id, ok: false, error }
// Progress: { id, progress }          (training steps and folds, while a request runs)
import init, { Fewshot, Classifier } from "./pkg/fewshot.js";

/** Longest side a photo is decoded at: the backbone sees 224 px, and huge photos would
 * cost hundreds of MB as RGBA. */
const MAX_SIDE = 1024;

let fewshot = null;
let stopRequested = false;
const classifiers = new Map(); // model key -> Classifier
let wasm = null;
/** Instantiate the wasm module once, whichever request comes first. */
const initOnce = () => (wasm ??= init());

/** Decode an image Blob to RGBA pixels, upright, at most MAX_SIDE on its longest side. */
async function decode(blob) {
  if (!blob || blob.size === 0) throw new Error("the file is empty (0 bytes)");
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    throw new Error("not a readable image: the browser cannot decode this file");
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return { pixels: context.getImageData(0, 0, w, h).data, width: w, height: h, originalWidth: width, originalHeight: height };
}

/** Pixels from a Blob or from an { pixels, width, height } object. */
async function pixelsOf(image) {
  return image instanceof Blob ? decode(image) : image;
}

function classifier(model) {
  const key = model.key;
  if (!classifiers.has(key)) classifiers.set(key, Classifier.load(new Uint8Array(model.bytes)));
  return classifiers.get(key);
}

const handlers = {
  async load({ weights, device }) {
    await initOnce();
    fewshot = await Fewshot.create(new Uint8Array(weights), device || "auto");
    const started = performance.now();
    await fewshot.warmUp();
    return {
      device: fewshot.device,
      note: fewshot.deviceNote,
      sha256: fewshot.weightsSha256,
      warning: fewshot.weightsWarning ?? null,
      warmUpMs: performance.now() - started,
    };
  },

  /** The views each photo is embedded in for these settings ({ framing, mirror }), and the
   * engine's defaults: { views, defaults }. */
  async views({ seeing }) {
    await initOnce();
    return { views: Fewshot.views(seeing || {}), defaults: Fewshot.defaultSettings() };
  },

  /** Embeddings of one image in several views (options of Fewshot.embed): [Float32Array]. */
  async embed({ image, variants }) {
    const { pixels, width, height } = await pixelsOf(image);
    const out = [];
    for (const options of variants || [{}]) {
      out.push(await fewshot.embed(pixels, width, height, options));
    }
    return out;
  },

  async imagenet({ image }) {
    const { pixels, width, height } = await pixelsOf(image);
    return fewshot.imagenet(pixels, width, height);
  },

  async train({ labels, embeddings, targets, variants, variantOf, config, seeing }, progress) {
    stopRequested = false;
    return fewshot.train(labels, embeddings, targets, variants || new Float32Array(), variantOf || new Uint32Array(), config, seeing, (report) => {
      progress(report);
      return !stopRequested;
    });
  },

  stop() {
    stopRequested = true;
  },

  /** Predictions for an image with a trained model { key, bytes }:
   * { predictions: [{ label, class, probability }], unfamiliar: { score, threshold, unfamiliar } | null,
   *   heatmap: { values: 7x7 in [0, 1] for the best class, framing, width, height } }. */
  async predict({ model, image }) {
    const c = classifier(model);
    const { pixels, width, height } = await pixelsOf(image);
    const views = c.views;
    const embedding = new Float32Array(views.length * 1280);
    const first = await fewshot.embedWithMap(pixels, width, height, views[0]);
    embedding.set(first.embedding, 0);
    for (const [i, view] of views.entries()) if (i > 0) embedding.set(await fewshot.embed(pixels, width, height, view), i * 1280);
    const predictions = c.predict(embedding);
    const heatmap = { values: c.heatmap(first.map, predictions[0].class), framing: views[0].framing, width, height };
    return { predictions, unfamiliar: c.judge(embedding) ?? null, heatmap };
  },

  modelInfo({ model }) {
    return classifier(model).info;
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    if (!handlers[op]) throw new Error(`unknown request ${op}`);
    if (op !== "load" && op !== "stop" && op !== "modelInfo" && op !== "views" && !fewshot) throw new Error("the engine is not loaded yet");
    const result = await handlers[op](args || {}, (progress) => self.postMessage({ id, progress }));
    self.postMessage({ id, ok: true, result });
  } catch (e) {
    self.postMessage({ id, ok: false, error: e && e.message ? e.message : String(e) });
  }
};
