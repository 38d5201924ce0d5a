// The one state object of the page, and update(patch): every change goes through here and
// ends in one render. The actions (actions.js) call the engine, then update. What renders is given
// (onUpdate: main.js gives draw.js's render), so that this module imports nothing and draw.js
// can import its helpers without a circle.

export const state = {
  /** The engine: "loading" | "ready" | "error"; device "webgpu" | "cpu". */
  engine: { status: "loading", progress: 0, device: null, note: "", message: "" },
  /** [{ id, name, photos: [{ id, url, image: Blob | null (until the engine has read it),
   *   source (what the person gave, until then), status: "embedding" | "ready" | "error",
   *   message }] }] (a photo's embeddings stay in the worker) */
  classes: [],
  /** Messages about photos that could not be added, per class id (or "preview"). */
  problems: {},
  /** Only what the person changed: every default and limit is the engine's (schema). */
  settings: {},
  /** The engine's settings, in order (src/settings.rs): [{ key, label, help, kind: "boolean" |
   * "integer" | "choice", default, min?, max?, choices?: [{ value, label }], onlyWhen?: { key,
   * value, why } }] (null until the engine has answered). */
  schema: null,
  /** The backbone the engine loaded: { sha256 } (null until it has). */
  backbone: null,
  /** The model card shown (Markdown text), or null. */
  card: null,
  /** The engine's key for the views photos are embedded in (stored with each embedding). */
  viewsKey: null,
  /** { running, history: [step report], validating: { fold, folds } | null, error, seconds } */
  training: { running: false, history: [], error: "" },
  /** The trained model: { bytes: Uint8Array, labels, validation (with summary), checkedPhotos:
   * [{ photoId, actual, predicted, confidence }], suspicious: [photoId], duplicates, history, seconds } */
  model: null,
  /** A clicked confusion-matrix cell: { actual, predicted }. */
  inspect: null,
  /** Live prediction: { predictions: [{ label, probability }], unfamiliar: { score, threshold, unfamiliar } | null,
   * heatmap: { values (7x7), framing, width, height }, source, url } */
  preview: null,
  webcam: { on: false, target: null, camera: null, cameras: [] },
  /** Overlay where the model looked on the photo being classified. */
  showHeat: true,
  /** The app around the page: offline: every file kept for offline use; update: a new
   * version is ready; installable: the browser offers to install the page as an app. */
  app: { offline: false, update: false, installable: false },
  /** The projects kept in this browser ([{ db, name, created }]) and the one open here. */
  projects: [],
  project: null,
  /** What was stored but could not be used, kept beside the project: [{ what, value, why, when }]. */
  setAside: [],
  /** Another tab edits this project: this one follows and changes nothing (tabs.js). */
  readOnly: false,
  /** One line for the whole page (saved, opened, errors without a better place). */
  notice: "",
};

/** Called after every update with the state and the keys that changed. */
let render = () => {};
export function onUpdate(fn) {
  render = fn;
}

export function update(patch) {
  Object.assign(state, patch);
  render(state, Object.keys(patch));
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

/** A setting's row of the engine's schema. */
const settingRow = (s, key) => s.schema?.find((row) => row.key === key);

/** A setting: what the person chose, else the engine's default. */
export function setting(s, key) {
  return s.settings[key] ?? settingRow(s, key)?.default;
}

/** Why a setting is not offered now (its row's onlyWhen), or null when it is. */
export function settingOff(s, row) {
  const rule = row.onlyWhen;
  return rule && setting(s, rule.key) !== rule.value ? rule.why : null;
}

/** A setting's value as people read it: on/off, a choice's words, the number. */
export function settingWords(s, row) {
  const value = setting(s, row.key);
  if (row.kind === "boolean") return value ? "on" : "off";
  if (row.kind === "choice") return row.choices.find((c) => c.value === value)?.label ?? String(value);
  return String(value);
}

/** The classes as the engine's project takes them: [{ id, name, photos: [photoId] }], the
 * photos that could not be read left out. */
export function classSpecs(s = state) {
  return s.classes.map((c) => ({ id: c.id, name: c.name, photos: c.photos.filter((p) => p.status !== "error").map((p) => p.id) }));
}
