// The engine's home: a module Web Worker that owns the wasm instance, the backbone (Backbone, src/web.rs)
// and the project's learning state (Project), so that embedding and training never freeze the
// page. It answers the requests of protocol.js; the page talks to it through engine.js only.
import init, { Backbone, Project } from "../pkg/fewshot.js";
import { Op, Kind, errorToMessage, badInput } from "../seam/protocol.js";
import { decode } from "../seam/image.js";
import { EmbedPool, engineCount } from "./pool.js";
import { useProject, readEmbeddings } from "../seam/database.js";
import { putEmbeddings, deleteEmbeddings } from "./embeddings.js";

// This worker's life, for whoever started it (engine.js): a Web Lock held until the worker
// ends, however it ends (closed, ended by the browser with no event, crashed); the browser
// then grants it to the page, which is waiting for it and so learns of the end at once.
// (Only in secure contexts, as Web Locks are: elsewhere the page's pings find a dead worker.)
if (self.isSecureContext && self.navigator?.locks) {
  const life = `fewshot worker ${crypto.randomUUID()}`;
  navigator.locks.request(life, () => (self.postMessage({ life }), new Promise(() => {}))).catch(() => {});
}

let backbone = null;
let project = null;
let wasm = null;
/** This worker's engine and, on the CPU, helper workers: see pool.js. */
let pool = null;
/** Instantiate the wasm module once, whichever request comes first, and make the project. */
async function ready() {
  await (wasm ??= init());
  project ??= new Project();
}

/** A photo decoded once (image.js), at the engine's minimum size or more. */
async function read(image) {
  await ready();
  return decode(image, Backbone.minImageSide());
}

/** The milliseconds of one backbone pass (one view of a grey photo) on `engine`. */
async function timePass(engine) {
  const side = 224;
  const pixels = new Uint8Array(side * side * 4).fill(128);
  const started = performance.now();
  await engine.embed(pixels, 1, side, side);
  return performance.now() - started;
}

function engine() {
  if (!backbone) throw badInput("the engine is not loaded yet");
  return backbone;
}

const handlers = {
  async [Op.Load]({ weights, device }) {
    await ready();
    const started = performance.now();
    backbone = await Backbone.create(new Uint8Array(weights), device || "auto");
    const own = backbone;
    pool?.close();
    pool = new EmbedPool((...photo) => own.embedViews(...photo), weights, engineCount(backbone.device));
    const loadMs = performance.now() - started;
    // How fast this device is, measured rather than assumed: one pass of the network, after
    // the warm-up (the page words its device with it, and its pings wait according to it).
    const passMs = await timePass(own);
    return {
      device: backbone.device,
      engines: pool.size,
      note: `${backbone.deviceNote}; one pass of the network took ${Math.round(passMs)} ms here`,
      passMs,
      sha256: backbone.weightsSha256,
      warning: backbone.weightsWarning ?? null,
      loadMs,
    };
  },

  async [Op.Hello]() {
    await ready();
    return { schema: Project.settingsSchema(), weightsSha256: Backbone.knownWeightsSha256() };
  },

  async [Op.SetSettings]({ settings }) {
    await ready();
    project.setSettings(settings ?? {});
    return { settings: project.settings, viewsKey: project.viewsKey, waiting: project.waiting() };
  },

  async [Op.SetClasses]({ classes }) {
    await ready();
    project.setClasses(classes);
    return { waiting: project.waiting() };
  },

  /** Take the stored embeddings of the project's photos (IndexedDB, read here: they never
   * cross to the page), and forget those of photos no longer in it (orphans of a reload in the
   * middle of adding). Resolves to the photos still to embed. */
  async [Op.Restore]({ clean = true, project: db } = {}) {
    await ready();
    if (db) useProject(db); // the project the page opened (seam/database.js keeps each apart)
    const key = project.viewsKey;
    const orphans = [];
    for (const { id, viewsKey, embeddings } of await readEmbeddings()) {
      if (viewsKey !== key) continue;
      try {
        project.setEmbeddings(id, embeddings);
      } catch {
        // Not in any class: an orphan. (One that no longer fits is made again: it stays waiting.)
        if (!project.hasPhoto(id)) orphans.push(id);
      }
    }
    if (clean) await deleteEmbeddings(orphans).catch(() => {});
    return { waiting: project.waiting(), orphans: orphans.length };
  },

  /** Decode once: the pixels every view is embedded from (by whichever engine of the pool is
   * free) and, for a new photo (`store`), the JPEG to keep. */
  async [Op.AddPhoto]({ photo, image, store: keep }) {
    const decoded = await read(image);
    const viewsKey = project.viewsKey;
    engine(); // refuses, in words, before the engine (and with it the pool) is loaded
    const embeddings = await pool.embed(viewsKey, decoded.pixels, decoded.width, decoded.height);
    // Settings that changed meanwhile asked for other views: the photo stays waiting.
    if (project.viewsKey === viewsKey) project.setEmbeddings(photo, embeddings);
    // Kept here, so that a reload finds them; a storage failure only costs embedding again.
    const kept = await putEmbeddings(photo, viewsKey, embeddings).then(() => true, () => false);
    return { image: keep && decoded.stored ? await decoded.stored() : null, kept };
  },

  async [Op.Train](_, progress) {
    return project.learn(engine(), progress);
  },

  async [Op.Stop]() {
    project?.stop();
  },

  async [Op.SetModel]({ bytes }) {
    await ready();
    project.setModel(bytes ?? null);
    return project.modelInfo;
  },

  /** The verdict on one photo; with `store`, the JPEG it was read as, to show. */
  async [Op.Predict]({ image, store }) {
    const decoded = await read(image);
    const { pixels, width, height } = decoded;
    const verdict = await project.classify(engine(), pixels, width, height);
    verdict.heatmap = { ...verdict.heatmap, width, height };
    return { ...verdict, image: store && decoded.stored ? await decoded.stored() : null };
  },

  /** A helper's work (pool.js): one photo's embeddings in the views `views`. */
  async [Op.Embed]({ views, pixels, width, height }) {
    return engine().embedViews(views, pixels, width, height);
  },

  async [Op.ImageNet]({ image }) {
    const { pixels, width, height } = await read(image);
    return engine().imagenet(pixels, width, height);
  },

  async [Op.CheckProject]({ json, files, model }) {
    await ready();
    return Project.checkProjectFile(json, files, model ?? null);
  },

  async [Op.CheckModel]({ figures, bytes, photos }) {
    await ready();
    return Project.checkStoredModel(figures, bytes, photos);
  },

  async [Op.Ping]() {
    return true;
  },

  async [Op.ExportTflite]() {
    return { bytes: project.exportTflite(engine()) };
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    if (!Object.hasOwn(handlers, op)) throw badInput(`unknown request ${op}`);
    const result = await handlers[op](args || {}, (progress) => self.postMessage({ id, progress }));
    self.postMessage({ id, ok: true, result });
  } catch (e) {
    const error = errorToMessage(e);
    self.postMessage({ id, ok: false, error });
    // A trap leaves the wasm instance unusable: every later request would fail or hang.
    if (e instanceof WebAssembly.RuntimeError) self.postMessage({ fatal: { kind: Kind.Internal, message: error.message } });
  }
};

// A request that cannot be read would never be answered, and the page would wait for it while
// the pings say all is well: the worker cannot go on.
self.addEventListener("messageerror", () => self.postMessage({ fatal: { kind: Kind.Internal, message: "a request to the engine could not be read" } }));

// Errors outside a request (a trap in a callback the engine scheduled) end the worker too.
self.addEventListener("error", (event) => self.postMessage({ fatal: { kind: Kind.Internal, message: event.message || "the engine crashed" } }));
self.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof WebAssembly.RuntimeError) self.postMessage({ fatal: errorToMessage(event.reason) });
});
