// Fewshot for web developers: classify images in your own page with a model trained in the
// Fewshot page ("Export model"). Everything runs on the visitor's device, in a worker.
//
//   import { load } from "fewshot";
//   const model = await load("model.fewshot");           // weights beside the page by default
//   const [best] = await model.predict(document.querySelector("img"));
//   console.log(best.label, best.probability, model.labels);
//
// Types: fewshot.d.ts.
import { EngineClient, WEIGHTS_FILE } from "../seam/engine.js";
import { Op, FewshotError, Kind } from "../seam/protocol.js";

export { FewshotError, Kind };
export { CONFIDENT, verdict } from "../seam/verdict.js";

/** The bytes of a model given as a URL, a Blob, an ArrayBuffer or a typed array. */
async function modelBytes(model) {
  if (model instanceof Uint8Array) return model;
  if (model instanceof ArrayBuffer) return new Uint8Array(model);
  if (ArrayBuffer.isView(model)) return new Uint8Array(model.buffer, model.byteOffset, model.byteLength);
  if (model instanceof Blob) return new Uint8Array(await model.arrayBuffer());
  if (typeof model === "string" || model instanceof URL) {
    const response = await fetch(model).catch((e) => {
      throw new FewshotError(Kind.Storage, `could not fetch the model ${model}: ${e.message}`);
    });
    if (!response.ok) throw new FewshotError(Kind.Storage, `could not fetch the model ${model} (HTTP ${response.status})`);
    return new Uint8Array(await response.arrayBuffer());
  }
  throw new FewshotError(Kind.BadInput, "load() takes a URL, a Blob, an ArrayBuffer or a Uint8Array");
}

/** An image the worker can take: a Blob or ImageData as they are, anything drawable as an
 * ImageBitmap (an <img> is waited for first). */
async function transferable(input) {
  if (input instanceof Blob || (typeof ImageData !== "undefined" && input instanceof ImageData)) return { image: input, transfer: [] };
  if (typeof HTMLImageElement !== "undefined" && input instanceof HTMLImageElement && !input.complete) await input.decode();
  if (typeof HTMLVideoElement !== "undefined" && input instanceof HTMLVideoElement && input.readyState < 2) {
    throw new FewshotError(Kind.BadInput, "the video has no picture yet: wait for its loadeddata event");
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(input);
  } catch (e) {
    throw new FewshotError(Kind.BadInput, `predict() takes an <img>, <canvas>, <video>, ImageBitmap, ImageData or Blob (${e.message})`);
  }
  return { image: bitmap, transfer: [bitmap] };
}

/** A trained model, ready to classify. */
class Model {
  #client;
  #disposed = false;

  constructor(client, info) {
    this.#client = client;
    /** The classes, in the model's order. */
    this.labels = info.labels;
    /** Everything the model file says about itself (cross-validated figures, settings, date). */
    this.info = info;
  }

  /** Every class with its probability, most likely first: [{ label, probability }]. */
  async predict(input) {
    const { predictions } = await this.classify(input);
    return predictions.map(({ label, probability }) => ({ label, probability }));
  }

  /** The full verdict: { predictions, unfamiliar: { score, threshold, unfamiliar } | null
   * ("none of these"), heatmap: { values (7x7), framing, width, height } }. */
  async classify(input) {
    if (this.#disposed) throw new FewshotError(Kind.BadInput, "this model was disposed: load it again");
    const { image, transfer } = await transferable(input);
    const { predictions, unfamiliar, heatmap } = await this.#client.call(Op.Predict, { image }, { transfer });
    return { predictions: predictions.map(({ label, probability }) => ({ label, probability })), unfamiliar, heatmap };
  }

  /** Stop the worker (a prediction under way rejects); the model cannot be used afterwards. */
  dispose() {
    this.#disposed = true;
    this.#client.restart();
  }
}

/**
 * Load a model (a URL, Blob, ArrayBuffer or Uint8Array of a `.fewshot` file) and the backbone.
 * Options: `weights` (the backbone's URL; default `weights/mobilenet_v2_1.0_224_quant.tflite`
 * beside the page), `device` ("auto" | "webgpu" | "cpu"), `onProgress(fraction)` while the
 * weights download.
 */
export async function load(model, { weights = new URL(WEIGHTS_FILE, document.baseURI), device = "auto", onProgress } = {}) {
  const client = new EngineClient(new URL("../worker/worker.js", import.meta.url));
  try {
    const bytes = await modelBytes(model);
    await client.load({ device, weightsUrl: weights, onProgress });
    const info = await client.call(Op.SetModel, { bytes });
    return new Model(client, info);
  } catch (e) {
    client.restart();
    throw e;
  }
}
