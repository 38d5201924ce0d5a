// The page's only way to the engine: starts the worker, fetches and caches the weights, and
// turns requests into promises. Plain data in, plain data out.

const WEIGHTS_URL = "weights/mobilenet_v2_1.0_224_quant.tflite";
const WEIGHTS_SHA256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776";
const WEIGHTS_BYTES = 3610798;
const CACHE = "fewshot-weights-v1";

let worker = null;
let nextId = 1;
const pending = new Map(); // id -> { resolve, reject, onProgress }

function start() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    const request = pending.get(data.id);
    if (!request) return;
    if ("progress" in data) return request.onProgress?.(data.progress);
    pending.delete(data.id);
    data.ok ? request.resolve(data.result) : request.reject(new Error(data.error));
  };
  worker.onerror = (event) => {
    const error = new Error(`the engine stopped: ${event.message || "unknown error"}`);
    for (const request of pending.values()) request.reject(error);
    pending.clear();
  };
}

function call(op, args, onProgress, transfer = []) {
  if (!worker) start();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ id, op, args }, transfer);
  });
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The weights, from the Cache API when there, else downloaded with progress(fraction). */
async function fetchWeights(onProgress) {
  const cache = "caches" in self ? await caches.open(CACHE) : null;
  const cached = cache && (await cache.match(WEIGHTS_URL));
  if (cached) {
    const buffer = await cached.arrayBuffer();
    if ((await sha256Hex(buffer)) === WEIGHTS_SHA256) return buffer;
    await cache.delete(WEIGHTS_URL);
  }
  const response = await fetch(WEIGHTS_URL);
  if (!response.ok) throw new Error(`could not download the model weights (HTTP ${response.status})`);
  // Content-Length counts compressed bytes when the server gzips; the reader sees them unpacked.
  const compressed = response.headers.get("Content-Encoding");
  const total = (!compressed && Number(response.headers.get("Content-Length"))) || WEIGHTS_BYTES;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress?.(Math.min(1, received / total));
  }
  const buffer = await new Blob(chunks).arrayBuffer();
  const hash = await sha256Hex(buffer);
  if (hash !== WEIGHTS_SHA256) throw new Error(`the downloaded weights are damaged (sha256 ${hash.slice(0, 12)}…); reload to try again`);
  await cache?.put(WEIGHTS_URL, new Response(buffer.slice(0)));
  return buffer;
}

/** Load the backbone; device: "auto" | "webgpu" | "cpu". Resolves to { device, note, ... }. */
export async function load({ device = "auto", onProgress } = {}) {
  const weights = await fetchWeights(onProgress);
  return call("load", { weights, device }, null, [weights]);
}

/** Embeddings of an image (Blob or { pixels, width, height }) in each preprocessing variant. */
export const embed = (image, variants) => call("embed", { image, variants });
/** The views photos are embedded in for { framing, mirror }, and the engine's defaults. */
export const views = (seeing) => call("views", { seeing });
export const imagenet = (image) => call("imagenet", { image });
export const train = (args, onEpoch) => call("train", args, onEpoch);
export const stop = () => call("stop");
export const predict = (model, image) => call("predict", { model, image });
export const modelInfo = (model) => call("modelInfo", { model });

/** Stop the worker and start a fresh one (after a crash or a lost GPU). */
export function restart() {
  worker?.terminate();
  worker = null;
  for (const request of pending.values()) request.reject(new Error("the engine was restarted"));
  pending.clear();
}
