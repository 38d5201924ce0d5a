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

/** How the page learns that its worker has ended. At once where the browser says so: the
 * worker's `error` event, a reply that cannot be read (`messageerror`), the worker's own
 * "fatal" message (a trap in the engine), and the end of the Web Lock the worker holds for its
 * whole life (worker.js), which the browser gives up only once the worker is gone, however it
 * ended: closed, or ended by the browser with no event at all (measured in Chromium 156: the
 * page's request for the lock was granted 5 ms after the worker's `self.close()`).
 *
 * Otherwise (a worker stuck in a loop; no Web Locks: an old browser, or plain http away from
 * localhost) by pings: while requests wait, the worker is asked every PING_EVERY_MS whether it
 * lives, and one that leaves a ping unanswered for longer than its limit is taken for dead.
 * A live worker answers between the steps of its work, so the limit is the longest a step may
 * take, and steps differ. Measured in Chromium 156 on the 2-core test machine while other
 * builds and browsers ran (load average 3 to 9), as the longest a worker went without running
 * a task: one pass of the network 174 ms; a photo's four views on a helper of the pool 0.5 to
 * 1.1 s, and 2.8 s at the busiest; a step of training with 1,024 hidden units 1.5 s at 100
 * photos and 4.5 s at 300 (a step grows with the photos and the units, restoring with the
 * photos). So on the CPU the limit is the most of: SILENT_CPU_MS; while it runs the network
 * (NETWORK), SILENT_PASSES passes of it as timed on this device when it loaded (a photo is up
 * to four; a slow phone's are slow; a busy machine's measured up to 7 here); and SILENT_GROWTH
 * times the longest an answered ping waited since the worker was last idle (the steps of the
 * work at hand). Pings go out within PING_EVERY_MS of a request and are looked at every
 * PING_EVERY_MS: a silent worker is found within SILENT_CPU_MS + 2 x PING_EVERY_MS = 4 s of its
 * last word where its steps are short (and, embedding, where a pass takes under 250 ms):
 * measured 3.8 to 4.1 s in the middle of training (tests/e2e/faults.test.mjs). Until the worker first answers in work whose first step can be
 * long (GROWING), and on WebGPU (SwiftShader takes seconds a pass), the limit is
 * SILENT_LONG_MS. */
export const PING_EVERY_MS = 500;
export const SILENT_CPU_MS = 3_000;
export const SILENT_PASSES = 12;
export const SILENT_GROWTH = 3;
export const SILENT_LONG_MS = 20_000;
/** Requests whose first step can take long: longer the bigger the project (training,
 * restoring), or the slower the device and the busier its cores (loading: the network read
 * from its file, warmed up and timed). */
const GROWING = new Set([Op.Train, Op.Restore, Op.Load]);
/** Requests that run the network (a step of theirs is up to a photo's four passes). */
const NETWORK = new Set([Op.AddPhoto, Op.Embed, Op.Predict, Op.ImageNet]);

/** One worker and its requests. `onFatal(error)` hears of a worker that died. */
export class EngineClient {
  #worker = null;
  #nextId = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress, op }
  #workerUrl;
  #name;
  /** When the oldest ping the worker has not answered was sent (0: none waits). */
  #pingedAt = 0;
  /** The longest a ping waited and was answered, since the worker was last idle. */
  #longestWait = 0;
  /** Pings are numbered (their ids are -1, -2, …; their answers carry them back). */
  #pings = 0;
  /** A request whose first step grows with the project (its id) was sent, and the worker has
   * not yet said a word of it nor answered a ping sent after it (from `ping`): 0 when none. */
  #growing = { id: 0, ping: 0 };
  /** When the pings were last looked at: a page held up longer than the worker is not a
   * worker that went silent. */
  #checkedAt = 0;
  /** The device the worker's engine runs on: "cpu", "webgpu", or "auto" while it loads so;
   * null before a load (the wasm module alone: the CPU's limit). */
  #device = null;
  /** One pass of the network on that device, in ms, as its load timed it (0: not yet). */
  #passMs = 0;
  #watch = null;
  onFatal = null;

  /** `name`: the worker's name (self.name inside it; DevTools shows it). */
  constructor(workerUrl = new URL("../worker/worker.js", import.meta.url), name = "fewshot engine") {
    this.#workerUrl = workerUrl;
    this.#name = name;
  }

  #start() {
    const worker = new Worker(this.#workerUrl, { type: "module", name: this.#name });
    this.#pingedAt = this.#longestWait = this.#passMs = 0;
    this.#growing = { id: 0, ping: 0 };
    this.#checkedAt = Date.now();
    this.#device = null;
    // A worker that has been replaced may still say something (its error event after its own
    // "fatal" message): only the current one is listened to.
    worker.onmessage = ({ data }) => {
      if (this.#worker !== worker) return;
      if (this.#pingedAt) this.#longestWait = Math.max(this.#longestWait, Date.now() - this.#pingedAt);
      this.#pingedAt = 0;
      if (data.id === this.#growing.id || -data.id >= this.#growing.ping) this.#growing = { id: 0, ping: 0 };
      if (data.fatal) return this.#die(errorFromMessage(data.fatal));
      if (data.life) return this.#watchLife(worker, data.life);
      const request = this.#pending.get(data.id);
      if (!request) return;
      if ("progress" in data) return request.onProgress?.(data.progress);
      this.#pending.delete(data.id);
      if (data.ok && request.op === Op.Load) {
        this.#device = data.result?.device ?? null;
        this.#passMs = Number(data.result?.passMs) || 0;
      }
      data.ok ? request.resolve(data.result) : request.reject(errorFromMessage(data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (this.#worker !== worker) return;
      this.#die(new FewshotError(Kind.Internal, `the engine stopped: ${event.message || "unknown error"}`));
    };
    // A reply that cannot be read: its request would wait for ever.
    worker.onmessageerror = () => {
      if (this.#worker === worker) this.#die(new FewshotError(Kind.Internal, "the engine's reply could not be read"));
    };
    this.#worker = worker;
    clearInterval(this.#watch);
    this.#watch = setInterval(() => this.#checkAlive(), PING_EVERY_MS);
  }

  /** The worker holds the Web Lock `name` for as long as it lives: the page queues for it, and
   * is granted it when the worker has ended. */
  #watchLife(worker, name) {
    globalThis.navigator?.locks
      ?.request(name, () => {
        if (this.#worker === worker) this.#die(new FewshotError(Kind.Internal, "the engine's worker ended"));
      })
      .catch(() => {});
  }

  /** How long the worker may leave a ping unanswered (see SILENT_CPU_MS). */
  #silentLimit() {
    if (this.#growing.id || !(this.#device === null || this.#device === "cpu")) return SILENT_LONG_MS;
    const passes = [...this.#pending.values()].some((r) => NETWORK.has(r.op)) ? SILENT_PASSES * this.#passMs : 0;
    return Math.max(SILENT_CPU_MS, passes, SILENT_GROWTH * this.#longestWait);
  }

  /** Ask a worker with requests waiting whether it lives (a ping, of a negative id, answered
   * and otherwise ignored); one that left a ping unanswered beyond its limit has died. */
  #checkAlive() {
    const now = Date.now();
    // The page itself was held up (its own work, a hidden tab's slowed timers): the worker's
    // answer may be waiting behind this very check, so the count starts again.
    const held = now - this.#checkedAt > 3 * PING_EVERY_MS;
    this.#checkedAt = now;
    if (!this.#worker || this.#pending.size === 0 || held) this.#pingedAt = 0;
    if (!this.#worker || this.#pending.size === 0) return void (this.#longestWait = 0);
    const silent = this.#pingedAt ? now - this.#pingedAt : 0;
    if (silent > this.#silentLimit()) {
      return this.#die(new FewshotError(Kind.Internal, `the engine stopped answering (nothing for ${(silent / 1000).toFixed(1)} s)`));
    }
    this.#pingedAt ||= now;
    this.#worker.postMessage({ id: -++this.#pings, op: Op.Ping, args: {} });
  }

  /** The worker is gone: every request fails with `error`, the next one starts a fresh worker. */
  #die(error) {
    this.#worker?.terminate();
    this.#worker = null;
    this.#device = null;
    clearInterval(this.#watch);
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
    this.onFatal?.(error);
  }

  /** Send one request of protocol.js's Op. */
  call(op, args = {}, { onProgress, transfer = [] } = {}) {
    if (!this.#worker) this.#start();
    const id = this.#nextId++;
    // Until a load says which device it chose, "auto" may be WebGPU.
    if (op === Op.Load) this.#device = args.device === "cpu" ? "cpu" : args.device || "auto";
    if (GROWING.has(op)) this.#growing = { id, ping: this.#pings + 1 };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress, op });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
  }

  /** Load the backbone; device "auto" | "webgpu" | "cpu". Resolves to { device, note (why
   * that device, and how long one pass of the network took on it), passMs, schema (the
   * settings' defaults and limits), … }. */
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
