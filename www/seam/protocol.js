// The whole protocol between the page (engine.js) and the engine's worker (worker.js): both
// import it. Pure JavaScript, tested under node (tests/js).
//
// Request:  { id, op, args }
// Reply:    { id, ok: true, result } | { id, ok: false, error: { kind, message } }
// Progress: { id, progress }                     (while a request runs: training steps, folds)
// Fatal:    { fatal: { kind: "internal", message } }   (the worker cannot go on: restart it)
// Life:     { life: name }   (once, at start: the Web Lock the worker holds until it ends)

/** What the page can ask of the worker. */
export const Op = Object.freeze({
  /** { weights: ArrayBuffer, device } → { device, engines (how many embed at once), note, sha256, warning,
   * loadMs, passMs (one pass of the network on that device, timed after its warm-up) } */
  Load: "load",
  /** {} → { schema: the settings' rows, in order (src/settings.rs, Settings::schema), weightsSha256 } */
  Hello: "hello",
  /** { settings } → { settings, viewsKey, waiting: [photoId] } */
  SetSettings: "setSettings",
  /** { classes: [{ id, name, photos: [photoId] }] } → { waiting: [photoId] } */
  SetClasses: "setClasses",
  /** { photo, image: Blob | ImageBitmap, store } → { image: Blob (the JPEG to keep, with store) | null, kept }
   * (the embeddings are kept by the worker, in IndexedDB: kept says whether that worked) */
  AddPhoto: "addPhoto",
  /** { views (a viewsKey), pixels (RGBA), width, height } → Float32Array: one photo's
   * embeddings, from a helper worker of the pool (pool.js) */
  Embed: "embed",
  /** { clean, project (its database, seam/database.js) } → { waiting: [photoId], orphans }: the worker
   * reads the stored embeddings itself */
  Restore: "restore",
  /** {} → the learning report (progress messages meanwhile) */
  Train: "train",
  /** {} → undefined: training keeps what it has */
  Stop: "stop",
  /** { bytes: Uint8Array | null } → model info | null */
  SetModel: "setModel",
  /** { image: Blob | ImageBitmap | ImageData, store } → { predictions, unfamiliar, heatmap, image: Blob (with store) | null } */
  Predict: "predict",
  /** { image } → the backbone's own ImageNet top-5 */
  ImageNet: "imagenet",
  /** {} → { bytes: Uint8Array }: the trained model as a standalone .tflite file */
  ExportTflite: "exportTflite",
  /** { json (project.json's text), files: { name: size in bytes }, model: Uint8Array | null } →
   * the project file's description, checked whole (src/projectfile.rs), or a bad-input error */
  CheckProject: "checkProject",
  /** { figures (JSON text of a stored model's figures), bytes, photos: [photoId] } → the figures
   * as they may be shown (labels and cross-validated figures from the model file), or bad-input */
  CheckModel: "checkModel",
  /** {} → true, at once: the worker is alive (engine.js asks while requests wait, with ids
   * below 0) */
  Ping: "ping",
});

/** An error's kind: what the page does about it. The same strings as the engine's
 * `ErrorKind::as_str` (src/error.rs). */
export const Kind = Object.freeze({
  /** Something the person gave: show it, change nothing. */
  BadInput: "bad-input",
  /** Training was stopped: not a failure. */
  Stopped: "stopped",
  /** The GPU failed or was lost: restart the engine on the CPU. */
  GpuLost: "gpu-lost",
  /** Storage (IndexedDB, files) failed. */
  Storage: "storage",
  /** A bug, or the worker died: restart the engine. */
  Internal: "internal",
});

const KINDS = new Set(Object.values(Kind));

/** An Error that knows its kind. */
export class FewshotError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "FewshotError";
    this.kind = KINDS.has(kind) ? kind : Kind.Internal;
  }
}

/** Any thrown value as the plain { kind, message } a reply carries. Errors from the engine
 * carry their kind; a WebAssembly trap (a panic) is internal; anything else thrown in the
 * worker without a kind is taken as bad input when it is a plain Error with a message. */
export function errorToMessage(e) {
  if (e && KINDS.has(e.kind)) return { kind: e.kind, message: String(e.message) };
  if (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError) {
    return { kind: Kind.Internal, message: `the engine crashed (${e.message})` };
  }
  if (e instanceof Error) return { kind: Kind.Internal, message: e.message || String(e) };
  return { kind: Kind.Internal, message: String(e) };
}

/** A reply's { kind, message } as a FewshotError. */
export function errorFromMessage(error) {
  if (!error || typeof error !== "object") return new FewshotError(Kind.Internal, String(error));
  return new FewshotError(error.kind, String(error.message ?? "unknown error"));
}

/** A bad-input error, for checks the worker makes itself. */
export const badInput = (message) => new FewshotError(Kind.BadInput, message);

/** The device to restart the engine on after this error, or null to carry on. A lost GPU
 * and a crash on the GPU (WebGPU failures often surface as one) move to the CPU. */
export function restartFor(error, device) {
  const kind = error?.kind;
  if (kind !== Kind.GpuLost && kind !== Kind.Internal) return null;
  if (device === "webgpu") return "cpu";
  return kind === Kind.Internal ? device || "auto" : null;
}
