// The one state object of the page, and update(patch): every change goes through here and
// ends in one render. Handlers in main.js call the engine, then update.
import { render } from "./render.js";

/** Page settings and their defaults (training's own defaults live in the engine). */
export const DEFAULT_SETTINGS = {
  hiddenUnits: 0,
  augment: false,
  framing: "crop",
};

export const state = {
  /** The engine: "loading" | "ready" | "error"; device "webgpu" | "cpu". */
  engine: { status: "loading", progress: 0, device: null, note: "", message: "" },
  /** [{ id, name, photos: [{ id, url, image: Blob, embeddings: [Float32Array] | null, status, message }] }] */
  classes: [],
  /** Messages about photos that could not be added, per class id (or "preview"). */
  problems: {},
  settings: { ...DEFAULT_SETTINGS },
  /** { running, history: [step report], validating: { fold, folds } | null, error, seconds } */
  training: { running: false, history: [], error: "" },
  /** The trained model: { bytes: Uint8Array, key, labels, validation, checkedPhotos: [{ photoId, actual, predicted, confidence }], suspicious: [photoId] } */
  model: null,
  /** A clicked confusion-matrix cell: { actual, predicted }. */
  inspect: null,
  /** Live prediction: { predictions: [{ label, probability }], unfamiliar: { score, threshold, unfamiliar } | null, source, url } */
  preview: null,
  webcam: { on: false, target: null },
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

/** The preprocessing variants each photo is embedded in: the photo, and with augmentation
 * its mirror image and a zoomed-in crop of both (TM #74). */
export function variants(settings) {
  const base = { framing: settings.framing };
  if (!settings.augment) return [base];
  return [base, { ...base, flip: true }, { ...base, zoom: 0.15 }, { ...base, flip: true, zoom: 0.15 }];
}
