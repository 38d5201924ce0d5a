// The one state object of the page, and update(patch): every change goes through here and
// ends in one render. Handlers in main.js call the engine, then update.
import { render } from "./render.js";

/** Page settings. Only what the person changed is stored: every default (the hidden layer,
 * the framing, mirroring) is the engine's, asked for when it loads (engine.defaults). */
export const DEFAULT_SETTINGS = {};

export const state = {
  /** The engine: "loading" | "ready" | "error"; device "webgpu" | "cpu". */
  engine: { status: "loading", progress: 0, device: null, note: "", message: "" },
  /** [{ id, name, photos: [{ id, url, image: Blob, embeddings: [Float32Array] | null, status, message }] }] */
  classes: [],
  /** Messages about photos that could not be added, per class id (or "preview"). */
  problems: {},
  settings: { ...DEFAULT_SETTINGS },
  /** The engine's defaults ({ hiddenUnits, framing, mirror }) and the views each photo is
   * embedded in for the current settings (null until the engine is ready). */
  defaults: null,
  views: null,
  /** { running, history: [step report], validating: { fold, folds } | null, error, seconds } */
  training: { running: false, history: [], error: "" },
  /** The trained model: { bytes: Uint8Array, key, labels, validation, checkedPhotos: [{ photoId, actual, predicted, confidence }], suspicious: [photoId] } */
  model: null,
  /** A clicked confusion-matrix cell: { actual, predicted }. */
  inspect: null,
  /** Live prediction: { predictions: [{ label, probability }], unfamiliar: { score, threshold, unfamiliar } | null,
   * heatmap: { values (7x7), framing, width, height }, source, url } */
  preview: null,
  webcam: { on: false, target: null },
  /** Overlay where the model looked on the photo being classified. */
  showHeat: true,
  /** One line for the whole page (saved, opened, errors without a better place). */
  notice: "",
};

export function update(patch) {
  Object.assign(state, patch);
  render(state);
}

/** Every photo of every class, with its class index. */
export function allPhotos(s = state) {
  return s.classes.flatMap((c, classIndex) => c.photos.map((photo) => ({ photo, classIndex, classId: c.id })));
}

/** Photo ids waiting for their embedding. */
export const pendingCount = (s = state) => allPhotos(s).filter(({ photo }) => photo.status === "embedding").length;

export function newId() {
  return crypto.randomUUID();
}

/** A setting: what the person chose, else the engine's default. */
export function setting(s, key) {
  return s.settings[key] ?? s.defaults?.[key];
}

/** The settings that decide how photos are seen, as the engine takes them ({ framing, mirror },
 * only those the person set). */
export function seeing(settings) {
  const out = {};
  for (const key of ["framing", "mirror"]) if (settings[key] !== undefined) out[key] = settings[key];
  return out;
}
