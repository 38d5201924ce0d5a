// Every core embedding: on the CPU with more than one core, the engine's worker deals photos
// to helper workers, one a core (capped), each a worker.js of its own with its own wasm
// instance and backbone (so that it works on any static host: no shared memory, no
// cross-origin isolation); it keeps its own thread for decoding, storing and answering the
// page. On a GPU or one core, its own engine embeds. A photo goes to whichever engine is free;
// a batch is spread over all of them. Helpers start on the first photo to embed, never for a
// page that only predicts; if every helper dies, the worker's own engine takes over.
// Measured through the page (tests/bench/page.mjs, 2 cores, 4 views a photo): 92 ms a photo
// with the worker embedding beside one helper, 64 ms with two helpers and the page keeping
// one photo more in flight than there are engines.
import { EngineClient } from "../seam/engine.js";
import { Kind, Op } from "../seam/protocol.js";

/** Engines that embed at most: beyond four, memory (one backbone and wasm instance each)
 * grows faster than a browser tab's share of the cores. */
export const MAX_ENGINES = 4;

/** How many engines to embed with: one per core the browser reports, capped, and only one
 * on a GPU (it is one device however many workers feed it). */
export function engineCount(device, cores = globalThis.navigator?.hardwareConcurrency) {
  if (device !== "cpu") return 1;
  return Math.max(1, Math.min(MAX_ENGINES, Math.floor(cores) || 1));
}

/** A promise that resolves in a later turn of the event loop (a message, without the
 * clamping of setTimeout). */
function nextTurn() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

export class EmbedPool {
  #own;
  #weights;
  #size;
  #helpers = [];
  #free = [];
  #waiting = [];

  /** `own(views, pixels, width, height)`: embed on this worker's engine; `weights`: the
   * backbone file's bytes, for the helpers; `size`: engines in all (see engineCount). */
  constructor(own, weights, size) {
    // This worker's engine computes inside the call, and the photos waiting for it follow in
    // the same turn of the event loop: without a turn between photos, no helper's answer is
    // read until every photo is done (measured: 2 engines no faster than 1). It embeds when
    // the pool has one engine, or none of its helpers is left.
    this.#own = { embed: async (...photo) => {
      const embeddings = await own(...photo);
      await nextTurn();
      return embeddings;
    } };
    this.#weights = weights;
    this.#size = size;
    if (size === 1) this.#free.push(this.#own);
  }

  get size() {
    return this.#size;
  }

  /** The embeddings of one photo in the views `views` (a project's viewsKey): a Float32Array. */
  async embed(views, pixels, width, height) {
    if (this.#size > 1 && this.#helpers.length < this.#size) this.#grow();
    for (;;) {
      const engine = this.#free.pop() ?? (await new Promise((take) => this.#waiting.push(take)));
      try {
        return await engine.embed(views, pixels, width, height);
      } catch (e) {
        // A helper that crashed or died leaves the pool and the photo goes to another engine;
        // any other error (bad input) is the photo's own.
        if (engine === this.#own || e?.kind !== Kind.Internal) throw e;
        this.#drop(engine);
        continue;
      } finally {
        if (this.#helpers.includes(engine) || engine === this.#own) this.#release(engine);
      }
    }
  }

  #release(engine) {
    const take = this.#waiting.shift();
    take ? take(engine) : this.#free.push(engine);
  }

  /** Start the helpers still missing; each joins the pool once its backbone is loaded. */
  #grow() {
    while (this.#helpers.length < this.#size) {
      const client = new EngineClient(new URL("./worker.js", import.meta.url), `fewshot helper ${this.#helpers.length + 1}`);
      const helper = {
        client,
        embed: (views, pixels, width, height) => client.call(Op.Embed, { views, pixels, width, height }),
      };
      this.#helpers.push(helper);
      client.onFatal = () => this.#drop(helper);
      client
        .call(Op.Load, { weights: this.#weights.slice(0), device: "cpu" })
        .then(() => this.#helpers.includes(helper) && this.#release(helper))
        .catch(() => this.#drop(helper));
    }
  }

  /** A helper is gone for good (this pool does not start it again: it shrinks instead). */
  #drop(helper) {
    const at = this.#helpers.indexOf(helper);
    if (at < 0) return;
    this.#helpers.splice(at, 1);
    this.#size--;
    this.#free = this.#free.filter((e) => e !== helper);
    // The last helper gone: this worker's own engine embeds again.
    if (this.#helpers.length === 0 && this.#size <= 0) {
      this.#size = 1;
      this.#release(this.#own);
    }
    helper.client.onFatal = null;
    helper.client.restart();
  }

  /** End every helper (the worker's engine is replaced, or the pool is no longer needed). */
  close() {
    for (const helper of [...this.#helpers]) this.#drop(helper);
  }
}
