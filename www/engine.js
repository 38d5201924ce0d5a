// The way to the engine: starts the worker, fetches and caches the weights, and turns the
// requests of protocol.js into promises that reject with a FewshotError of the right kind.
// The page uses one client; the package (fewshot.js) makes its own.
import { Op, Kind, FewshotError, errorFromMessage } from "./protocol.js";

/** The backbone file beside the page (its sha256 is the engine's to know). */
export const WEIGHTS_FILE = "weights/mobilenet_v2_1.0_224_quant.tflite";
const CACHE = "fewshot-weights-v1";

/** The sha256 of bytes, in hex. */
export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The weights at `url` that have sha256 `expected`, from the Cache API when there, else
 * downloaded with onProgress(fraction). The cache is an optimisation: when it fails (storage
 * full, private mode) the weights are used all the same. */
export async function fetchWeights(url, expected, onProgress) {
  let cache = null;
  try {
    cache = "caches" in self ? await caches.open(CACHE) : null;
    const cached = cache && (await cache.match(url));
    if (cached) {
      const buffer = await cached.arrayBuffer();
      if ((await sha256Hex(buffer)) === expected) return buffer;
      await cache.delete(url);
    }
  } catch {
    cache = null;
  }
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new FewshotError(Kind.Storage, `could not download the model weights (${e.message})`);
  }
  if (!response.ok) throw new FewshotError(Kind.Storage, `could not download the model weights (HTTP ${response.status})`);
  // Content-Length counts compressed bytes when the server gzips; the reader sees them unpacked.
  const total = (!response.headers.get("Content-Encoding") && Number(response.headers.get("Content-Length"))) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (total) onProgress?.(Math.min(1, received / total));
  }
  const buffer = await new Blob(chunks).arrayBuffer();
  const hash = await sha256Hex(buffer);
  if (hash !== expected) throw new FewshotError(Kind.Storage, `the downloaded weights are damaged (sha256 ${hash.slice(0, 12)}…); reload to try again`);
  await cache?.put(url, new Response(buffer.slice(0))).catch(() => {});
  return buffer;
}

/** While requests wait, the worker is asked whether it is alive this often; one that has said
 * nothing for DEAD_AFTER_MS is taken for dead. A worker can end without any event (closed, or
 * ended by the browser); every step of its own work yields, so a live one answers in well
 * under a second, and in a few seconds while it embeds a photo on a slow CPU. */
export const PING_EVERY_MS = 2_000;
export const DEAD_AFTER_MS = 20_000;

/** One worker and its requests. `onFatal(error)` hears of a worker that died. */
export class EngineClient {
  #worker = null;
  #nextId = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress }
  #workerUrl;
  #name;
  #heardAt = 0;
  #watch = null;
  onFatal = null;

  /** `name`: the worker's name (self.name inside it; DevTools shows it). */
  constructor(workerUrl = new URL("./worker.js", import.meta.url), name = "fewshot engine") {
    this.#workerUrl = workerUrl;
    this.#name = name;
  }

  #start() {
    const worker = new Worker(this.#workerUrl, { type: "module", name: this.#name });
    this.#heardAt = Date.now();
    // A worker that has been replaced may still say something (its error event after its own
    // "fatal" message): only the current one is listened to.
    worker.onmessage = ({ data }) => {
      if (this.#worker !== worker) return;
      this.#heardAt = Date.now();
      if (data.fatal) return this.#die(errorFromMessage(data.fatal));
      const request = this.#pending.get(data.id);
      if (!request) return;
      if ("progress" in data) return request.onProgress?.(data.progress);
      this.#pending.delete(data.id);
      data.ok ? request.resolve(data.result) : request.reject(errorFromMessage(data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (this.#worker !== worker) return;
      this.#die(new FewshotError(Kind.Internal, `the engine stopped: ${event.message || "unknown error"}`));
    };
    this.#worker = worker;
    clearInterval(this.#watch);
    this.#watch = setInterval(() => this.#checkAlive(), PING_EVERY_MS);
  }

  /** Ask a worker with requests waiting whether it lives (a ping of id 0, answered and ignored);
   * one silent for DEAD_AFTER_MS has died. */
  #checkAlive() {
    if (!this.#worker || this.#pending.size === 0) return void (this.#heardAt = Date.now());
    const silent = Date.now() - this.#heardAt;
    if (silent > DEAD_AFTER_MS) {
      return this.#die(new FewshotError(Kind.Internal, `the engine stopped answering (nothing for ${Math.round(silent / 1000)} s)`));
    }
    this.#worker.postMessage({ id: 0, op: Op.Ping, args: {} });
  }

  /** The worker is gone: every request fails with `error`, the next one starts a fresh worker. */
  #die(error) {
    this.#worker?.terminate();
    this.#worker = null;
    clearInterval(this.#watch);
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
    this.onFatal?.(error);
  }

  /** Send one request of protocol.js's Op. */
  call(op, args = {}, { onProgress, transfer = [] } = {}) {
    if (!this.#worker) this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
  }

  /** Load the backbone; device "auto" | "webgpu" | "cpu". Resolves to { device, note,
   * schema (the settings' defaults and limits), … }. */
  async load({ device = "auto", weightsUrl = WEIGHTS_FILE, onProgress } = {}) {
    const { schema, weightsSha256 } = await this.call(Op.Hello);
    const weights = await fetchWeights(weightsUrl, weightsSha256, onProgress);
    return { schema, ...(await this.call(Op.Load, { weights, device }, { transfer: [weights] })) };
  }

  /** Stop the worker and everything it was doing; the next request starts a fresh one. */
  restart() {
    const onFatal = this.onFatal;
    this.onFatal = null;
    this.#die(new FewshotError(Kind.Internal, "the engine was restarted"));
    this.onFatal = onFatal;
  }
}
