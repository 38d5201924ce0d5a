// What the page does: each action takes plain data (from events.js), calls the engine's worker
// or the store, then update()s the state; draw.js shows it. Every rule (class names, what
// training needs, settings' limits) is the engine's: the page shows the engine's error, of the
// kind protocol.js names.
import { EngineClient } from "../seam/engine.js";
import { Op, Kind, restartFor } from "../seam/protocol.js";
import * as store from "./store.js";
import * as tabs from "./tabs.js";
import { writeProject, readProject } from "./projectfile.js";
import { modelCard } from "./modelcard.js";
import { webAppZip } from "./webapp.js";
import * as webcam from "./webcam.js";
import { download, videoFor } from "./draw.js";
import { state, update, allPhotos, newId, classSpecs, settingWords } from "./state.js";

const engine = new EngineClient();

// ---------- project ----------

function newClass(name) {
  return { id: newId(), name, photos: [] };
}

/** A stored photo: ready unless the engine says it wants it embedded (markWaiting), or one
 * given but not read before a reload (pending: read now). Its embeddings live in the
 * engine's worker, not here; its image (and time added) may come a moment later
 * (imagesLoaded). */
function photoFromStored({ id, image, added, pending, name }) {
  if (pending) return { id, added, image: null, source: new File([image], name || "photo"), status: "embedding", message: "" };
  return { id: id || newId(), added, image: image ?? null, status: "ready", message: "" };
}

/** The images of the photos restore() showed, read after them: what needs a stored photo's
 * image or time (embedding it again, saving the project) waits for this. */
let imagesLoaded = Promise.resolve();
export const imagesRead = () => imagesLoaded;
/** Each class's first photos (those its grid shows before it is scrolled) are read first. */
const FIRST_READ = 60;
async function loadImages(classes) {
  const waiting = (photos) => photos.filter((p) => !p.image && !p.source);
  const read = async (ids) => {
    const stored = await store.images(ids);
    for (const photo of waiting(classes.flatMap((c) => c.photos))) Object.assign(photo, stored.get(photo.id));
    update({ classes: state.classes });
  };
  try {
    const first = waiting(classes.flatMap((c) => c.photos.slice(0, FIRST_READ)));
    if (first.length) await read(first.map((p) => p.id));
    if (waiting(classes.flatMap((c) => c.photos)).length) await read(null);
  } catch (e) {
    update({ notice: `Could not read the saved photos (${e.message}).` });
  }
}

/** A photo someone just gave (a file, a webcam frame): stored once the engine has read it. */
function newPhoto(source, added) {
  return { id: newId(), added, image: null, source, status: "embedding", message: "" };
}

// Safari keeps no Blob in a private window's storage: say what that means for the person.
store.whenBlobsRefused(() =>
  update({
    notice:
      "This browser does not keep photo files here, as Safari does in a private window: they are kept as plain bytes instead. " +
      "If this is a private window, everything here is forgotten when it closes: use Save project to keep it.",
  }),
);

/** This tab's part when the project is open in several (tabs.js): the first edits, the others
 * follow what it stores, and take over when it closes. */
export function joinTabs() {
  // One reload at a time, and one more after it when the other tab wrote meanwhile: two
  // reloads side by side could end in the wrong order, the older one's list of photos not yet
  // embedded (markWaiting) marking the newer one's photos as waiting for ever.
  let reloading = null;
  let again = false;
  const reload = () => {
    again = true;
    reloading ??= (async () => {
      while (again) {
        again = false;
        await restore();
        if (state.engine.status === "ready") await seedEngine();
      }
    })().finally(() => (reloading = null));
    return reloading;
  };
  return tabs.joinTabs({
    onLead: () => {
      const wasFollowing = state.readOnly;
      update({ readOnly: false, notice: wasFollowing ? "The other tab was closed: you can edit here now." : state.notice });
      if (wasFollowing) reload();
    },
    onFollow: () => update({ readOnly: true, notice: "This project is open in another tab: edit it there. This tab follows it, and can edit once that tab is closed." }),
    onChanged: () => state.readOnly && reload(),
  });
}

/** Which of the projects kept in this browser this tab opens (store.js keeps the list):
 * the one chosen last. A note left by the action that chose it (an opened file) is shown. */
export async function chooseProject() {
  try {
    const all = await store.projects();
    const chosen = await store.chosenProject(all);
    store.useProject(chosen.db);
    update({ projects: all, project: chosen });
  } catch (e) {
    update({ notice: `Could not read the list of projects (${e.message}); showing the first.` });
  }
  const note = sessionStorage.getItem(NOTE_KEY);
  if (note) {
    sessionStorage.removeItem(NOTE_KEY);
    update({ notice: note });
  }
}
const NOTE_KEY = "fewshot-note";

/** Open another project: this page reloads into it (its engine, its tab lock, its photos). */
async function switchTo(db, note = "") {
  await store.chooseProject(db);
  if (note) sessionStorage.setItem(NOTE_KEY, note);
  location.reload();
}

/** Open the project kept in this browser (or start one). Whatever is stored that cannot be
 * used never stops the page: store.load() sets aside what is not what this page writes, and the
 * engine's checks set aside settings and a model it refuses (seedEngine); the photos stay. */
export async function restore() {
  const started = Date.now();
  let saved = null;
  try {
    saved = await store.load();
  } catch (e) {
    // Not even readable: nothing is written over it (a later reload may read it).
    update({ readOnly: true, notice: `Could not read the saved project (${e.message}). Nothing was changed: reload to try again, or open another project.` });
    return;
  }
  if (!saved || saved.classes.length === 0) {
    update({ classes: [newClass("Class 1"), newClass("Class 2")], setAside: saved?.setAside ?? [] });
    return saveMeta();
  }
  const settings = { ...saved.settings };
  state.settings = settings;
  const classes = saved.classes.map((c) => ({ id: c.id, name: c.name, photos: c.photos.map(photoFromStored) }));
  // The model is shown once the engine has checked it against its figures (seedEngine).
  storedModel = saved.model || null;
  update({ settings, setAside: saved.setAside, model: null, training: { running: false, history: [], error: "" }, classes });
  imagesLoaded = loadImages(classes);
  // Set aside by this very load: said once, and kept so (the next load finds it in order).
  if (saved.setAside.some((a) => a.when >= started)) {
    sayWhatWasSetAside(saved.recovered);
    saveMeta();
  }
}

/** The stored model, until the engine has checked it. */
let storedModel = null;

function sayWhatWasSetAside(recovered) {
  const what = [...new Set(state.setAside.map((a) => a.what))];
  const words = { classes: "the list of classes", settings: "the settings", model: "the model" };
  update({
    notice: `Part of the saved project could not be used and was set aside (${what.map((w) => words[w] ?? w).join(", ")}): ${recovered ? "the classes were made again from the photos, " : ""}every photo is kept${what.includes("model") ? "; train again for a model" : ""}.`,
  });
}

/** Keep what could not be used beside the project, out of the way, and carry on without it. */
function setAside(what, value, why) {
  update({ setAside: [...(state.setAside ?? []), { what, value, why, when: Date.now() }] });
  sayWhatWasSetAside(false);
  saveMeta();
}

let metaTimer = null;
function saveMeta() {
  clearTimeout(metaTimer);
  if (state.readOnly) return; // another tab edits
  metaTimer = setTimeout(() => store.putMeta(state).catch((e) => update({ notice: `Could not save: ${e.message}` })), 150);
}

const findClass = (id) => state.classes.find((c) => c.id === id);

function setProblems(key, messages) {
  update({ problems: { ...state.problems, [key]: messages } });
}

// ---------- the engine ----------

let ready = null;
/** Resolves once the engine has first started (or failed to): the stored model is checked by
 * then (seedEngine), so a photo given to classify before waits for it instead of being dropped. */
let firstStart;
const firstStarted = new Promise((resolve) => (firstStart = resolve));

export function startEngine(device) {
  update({ engine: { status: "loading", progress: 0, device: null, note: "", message: "" } });
  ready = engine
    .load({ device, onProgress: (progress) => update({ engine: { ...state.engine, progress } }) })
    .then(async (info) => {
      state.schema = info.schema;
      state.backbone = { sha256: info.sha256 };
      await seedEngine();
      update({ engine: { status: "ready", progress: 1, device: info.device, engines: info.engines, note: info.note, message: "" } });
      embedQueue();
      return info;
    })
    .catch((e) => {
      update({ engine: { status: "error", progress: 0, device: null, note: "", message: e.message } });
      throw e;
    });
  ready.catch(() => {}).finally(firstStart);
  return ready;
}

/** Hand the engine the project: settings, classes, the model; it reads the stored embeddings
 * itself and says which photos still need embedding. */
async function seedEngine() {
  // Which photos wait is said once, by the engine's Restore, after it has these classes: its
  // answer to the settings is about the classes it had before (in a tab that follows another,
  // photos not embedded then, marked as waiting for ever).
  try {
    await applySettings(state.settings, { mark: false });
  } catch (e) {
    if (e.kind !== Kind.BadInput) throw e;
    const refused = state.settings;
    state.settings = {};
    setAside("settings", refused, e.message);
    await applySettings(state.settings, { mark: false });
  }
  await syncClasses();
  // A tab that follows another cleans nothing: what looks orphaned may be half-written there.
  markWaiting((await engine.call(Op.Restore, { clean: !state.readOnly, project: store.currentProject() })).waiting, { exact: true });
  const model = storedModel ?? state.model;
  if (model?.bytes) {
    try {
      await engine.call(Op.SetModel, { bytes: model.bytes });
      const { bytes, ...figures } = model;
      const checked = await engine.call(Op.CheckModel, { figures: JSON.stringify(figures), bytes, photos: allPhotos().map(({ photo }) => photo.id) });
      update({ model: { ...checked, bytes }, training: model.history ? { running: false, history: checked.history, seconds: checked.seconds, error: "" } : state.training });
    } catch (e) {
      if (e.kind !== Kind.BadInput) throw e;
      await engine.call(Op.SetModel, { bytes: null }).catch(() => {});
      update({ model: null });
      setAside("model", model, e.message);
    }
  }
  storedModel = null;
}

/** After an error: restart the engine when the error says so (a lost GPU on the CPU), and
 * say so. Returns true when it restarted. A dead worker is heard of twice (the request that
 * failed and onFatal): one restart serves both. */
let recovering = null;
function recover(error) {
  const device = restartFor(error, state.engine.device);
  if (!device) return Promise.resolve(false);
  recovering ??= restart(error, device).finally(() => (recovering = null));
  return recovering;
}

async function restart(error, device) {
  engine.restart();
  const where = device === "cpu" && state.engine.device === "webgpu" ? " on the CPU" : "";
  // The driver's own words help a bug report, not the person: they go to the console.
  console.warn("engine restarted after:", error);
  const what = error.kind === Kind.GpuLost ? "The GPU stopped working (the browser lost its graphics process)" : "The engine stopped unexpectedly";
  update({ notice: `${what}. Carrying on${where}; your photos are safe.` });
  await startEngine(device).catch(() => {});
  return true;
}
engine.onFatal = (error) => recover(error);

/** The photos the engine has no embeddings for, after a settings change or a restore, are
 * embedded (again). `exact`: the list is the whole truth (Op.Restore), so a kept photo shown as
 * waiting that the engine has is ready (a photo being read now, or given and not read yet, is
 * left as it is). */
function markWaiting(ids, { exact = false } = {}) {
  const waiting = new Set(ids);
  for (const { photo } of allPhotos()) {
    if (waiting.has(photo.id) && photo.status === "ready") photo.status = "embedding";
    else if (exact && !waiting.has(photo.id) && photo.status === "embedding" && !photo.source && !photo.trying) photo.status = "ready";
  }
  update({});
}

/** Tell the engine the classes; a broken rule (two classes of one name) is said, and the
 * engine keeps the classes it had. */
async function syncClasses() {
  try {
    await engine.call(Op.SetClasses, { classes: classSpecs() });
    if (state.classRule) update({ classRule: "", notice: "" });
    return true;
  } catch (e) {
    if (e.kind === Kind.BadInput) update({ classRule: e.message, notice: `${e.message[0].toUpperCase()}${e.message.slice(1)}.` });
    else recover(e);
    return false;
  }
}

/** Give the engine the person's settings (only those they changed); refused ones are said. */
async function applySettings(settings, { mark = true } = {}) {
  const { waiting, viewsKey } = await engine.call(Op.SetSettings, { settings });
  state.viewsKey = viewsKey;
  if (mark) markWaiting(waiting);
}

/** Photos in the worker at once: one more than it has engines to embed them (pool.js), so
 * that the next photo is decoded while the others are embedded. */
let lanes = 0;

const nextWaiting = () => allPhotos().find(({ photo }) => photo.status === "embedding" && !photo.trying);

/** Embed every photo that needs it; a new photo's JPEG is stored, its embeddings the worker
 * keeps. */
function embedQueue() {
  if (state.readOnly) return; // the editing tab embeds; this one shows what it stores
  while (lanes < (state.engine.engines || 1) + 1 && state.engine.status === "ready" && nextWaiting()) {
    lanes++;
    // A lane that ended (the engine restarted under it) hands on to a new one.
    lane().finally(() => {
      lanes--;
      embedQueue();
    });
  }
}

async function lane() {
  for (let next = nextWaiting(); next && state.engine.status === "ready"; next = nextWaiting()) {
    const { photo, classId } = next;
    photo.trying = true;
    let fresh = false;
    try {
      if (!photo.image && !photo.source) await imagesLoaded; // a stored photo, embedded again
      const result = await engine.call(Op.AddPhoto, { photo: photo.id, image: photo.image ?? photo.source, store: !photo.image });
      fresh = !!result.image;
      if (result.image) Object.assign(photo, { image: result.image, source: null });
      photo.status = "ready";
    } catch (e) {
      if (await recover(e)) return;
      const owner = findClass(classId);
      if (!owner?.photos.includes(photo)) continue; // removed meanwhile
      setProblems(classId, [...(state.problems[classId] || []), `${photo.source?.name || "A photo"}: ${e.message}`]);
      if (photo.image || !photo.source) Object.assign(photo, { status: "error", message: e.message }); // kept
      else {
        // Never read: nothing to keep (and its bytes as given are forgotten).
        owner.photos = owner.photos.filter((p) => p !== photo);
        store.deletePhotos([photo.id]).catch(() => {});
      }
      photo.source = null;
      update({ classes: state.classes });
      await syncClasses();
      continue;
    } finally {
      photo.trying = false;
    }
    const owner = state.classes.find((c) => c.photos.includes(photo));
    if (owner && fresh) {
      await store.putPhoto(photo, owner.id).catch(async (e) => {
        // Shown as not kept (a reload would not find it), and left out of training.
        Object.assign(photo, { status: "error", message: e.message });
        update({ classes: state.classes, notice: `Could not keep a photo: ${e.message}` });
        await syncClasses();
      });
    }
    update({});
  }
}

// ---------- adding photos ----------

/** Add image files to a class (or, with folder names, to a class per folder). The engine
 * reads each (decoding it once) and says what is not a photo. */
export async function addFiles(classId, items) {
  classId ??= state.classes[0]?.id;
  let added = 0;
  const given = [];
  for (const { file, folder } of items) {
    let target = findClass(classId);
    if (folder) {
      target = state.classes.find((c) => c.name === folder);
      if (!target) {
        // An untouched empty class is reused before new ones are made.
        target = state.classes.find((c) => c.photos.length === 0 && /^Class \d+$/.test(c.name));
        if (target) target.name = folder;
        else state.classes.push((target = newClass(folder)));
      }
    }
    if (!target) continue;
    const photo = newPhoto(file, Date.now() + added++);
    target.photos.push(photo);
    given.push([photo, target.id]);
  }
  saveMeta();
  // Kept as given at once, in one transaction, so that a reload now loses none of them.
  store.putPhotos(given).catch((e) => update({ notice: `Could not keep the photos: ${e.message}` }));
  update({ problems: { ...state.problems, [classId]: [] }, training: { ...state.training, error: "" } });
  await syncClasses();
  embedQueue();
}

// ---------- training ----------

export async function train() {
  const started = performance.now();
  update({ training: { running: true, history: [], validating: null, error: "" }, inspect: null });
  try {
    if (!(await syncClasses())) throw Object.assign(new Error(state.classRule), { kind: Kind.BadInput });
    const result = await engine.call(Op.Train, {}, {
      // Checking reports every optimiser step of every fold: the page shows folds done.
      onProgress: (report) => {
        if (report.phase !== "validating") return update({ training: { ...state.training, history: [...state.training.history, report] } });
        if (report.fold !== state.training.validating?.fold) update({ training: { ...state.training, validating: { fold: report.fold, folds: report.folds } } });
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const model = {
      bytes: result.model,
      labels: result.labels,
      validation: result.validation && { ...result.validation, summary: result.summary },
      checkedPhotos: result.checked.map(({ photo, actual, predicted, confidence }) => ({ photoId: photo, actual, predicted, confidence })),
      suspicious: result.suspicious,
      duplicates: result.duplicates,
      history: result.history,
      seconds,
    };
    update({ model, training: { running: false, history: result.history, validating: null, stopped: result.stopped, seconds, error: "" } });
    saveMeta();
    refreshPreview();
  } catch (e) {
    const message =
      e.kind === Kind.BadInput ? `Not yet: ${e.message}.`
      : restartFor(e, state.engine.device) ? `Training was interrupted: the engine stopped (${e.message}). Train again once it is ready.`
      : `Training failed: ${e.message}`;
    update({ training: { ...state.training, running: false, error: message } });
    recover(e);
  }
}

// ---------- trying the model ----------

let previewSource = null; // the last Blob classified, to redo after retraining

export async function classify(blob) {
  setProblems("preview", []);
  if (!state.model && !storedModel) return;
  try {
    await firstStarted;
    await ready;
    if (!state.model) return;
    previewSource = blob;
    const { predictions, unfamiliar, heatmap, image } = await engine.call(Op.Predict, { image: blob, store: true });
    if (state.preview?.url) URL.revokeObjectURL(state.preview.url);
    update({ preview: { predictions, unfamiliar, heatmap, url: URL.createObjectURL(image), source: "photo" } });
  } catch (e) {
    setProblems("preview", [`${blob.name || "That image"}: ${e.message}`]);
    recover(e);
  }
}

function refreshPreview() {
  if (previewSource && !state.webcam.on) classify(previewSource);
}

// ---------- webcam ----------

let captureTimer = null;

export async function toggleWebcam(target) {
  const wasOn = state.webcam.on;
  const previous = state.webcam.target;
  stopAllWebcams();
  if (wasOn && previous === target) return;
  try {
    update({ webcam: { on: true, target, camera: null, cameras: [] } });
    const video = videoFor(target);
    const { camera, cameras } = await webcam.start(video);
    update({ webcam: { on: true, target, camera, cameras } });
    if (target === "preview") webcamPreviewLoop(video);
  } catch (e) {
    update({ webcam: { on: false, target: null } });
    setProblems(target, [e.message]);
  }
}

function stopAllWebcams() {
  webcam.stopAll();
  stopCapture();
  update({ webcam: { on: false, target: null, camera: null, cameras: [] } });
}

/** The next camera of the device (a phone's front and rear ones), in the same place. */
export async function switchCamera() {
  const { on, target, camera, cameras } = state.webcam;
  if (!on || cameras.length < 2) return;
  const video = videoFor(target);
  webcam.stop(video);
  try {
    const started = await webcam.start(video, webcam.nextCamera(cameras, camera));
    if (state.webcam.on && state.webcam.target === target) update({ webcam: { ...state.webcam, ...started } });
  } catch (e) {
    stopAllWebcams();
    setProblems(target, [e.message]);
  }
}

async function webcamPreviewLoop(video) {
  while (state.webcam.on && state.webcam.target === "preview") {
    if (state.model && video.videoWidth) {
      try {
        const frame = await webcam.frame(video);
        const { predictions, unfamiliar, heatmap } = await engine.call(Op.Predict, { image: frame }, { transfer: [frame] });
        if (state.webcam.on) update({ preview: { predictions, unfamiliar, heatmap, url: null, source: "webcam" } });
      } catch (e) {
        setProblems("preview", [e.message]);
        if (await recover(e)) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    } else {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** While the capture button is held: a frame of the class's webcam every 250 ms. */
export function startCapture(classId) {
  stopCapture();
  const video = videoFor(classId);
  const grab = async () => {
    if (video?.videoWidth) addFiles(classId, [{ file: await webcam.frame(video), folder: null }]);
  };
  grab();
  captureTimer = setInterval(grab, 250);
}

export function stopCapture() {
  clearInterval(captureTimer);
  captureTimer = null;
}

// ---------- keeping ----------

/** Open a project ZIP, a ZIP of one folder per class, or an old project file, as a new project
 * beside the others (store.addProject): checked whole by the engine first (projectfile.js,
 * src/projectfile.rs), written whole, then opened. What is open is never touched. */
export async function openProject(file) {
  try {
    // The check needs the engine's module, not its backbone: a failed start does not stop it.
    await firstStarted;
    const check = (json, files, model) => engine.call(Op.CheckProject, { json, files, model });
    const project = await readProject(new Uint8Array(await file.arrayBuffer()), file.name, check);
    // Embeddings made by another backbone are made again.
    const sameBackbone = project.kind === "binary" || (project.backbone?.sha256 && project.backbone.sha256 === state.backbone?.sha256);
    const ids = new Set();
    const uniqueId = (id) => (id && !ids.has(id) ? ids.add(id) && id : newId());
    const classes = project.classes.map((c) => ({
      id: newId(),
      name: c.name,
      photos: c.photos.map((p, i) => ({ ...p, id: uniqueId(p.id), added: p.added ?? i, embeddings: sameBackbone ? p.embeddings : null })),
    }));
    const name = file.name.replace(/\.(zip|fewshot-project)$/i, "").slice(0, 80) || "Opened project";
    const record = await store.addProject(name, { classes, settings: project.settings, model: project.model });
    const notes = [`Opened ${file.name} as a new project, "${name}": ${classes.length} classes, ${classes.reduce((n, c) => n + c.photos.length, 0)} photos`];
    if (project.skipped.length) notes.push(`${project.skipped.length} files that are not photos were left out (${project.skipped.slice(0, 3).join(", ")}${project.skipped.length > 3 ? ", …" : ""})`);
    if (!sameBackbone && project.kind === "project") notes.push("it was made with another backbone, so its photos are read again");
    notes.push(`your other projects are under Project`);
    await switchTo(record.db, `${notes.join("; ")}.`);
  } catch (e) {
    update({ notice: `Could not open ${file.name}: ${e.message}. Your current project is unchanged.` });
  }
}

/** The model card of the project as it is (modelcard.js). */
function currentCard() {
  const classes = state.classes.map((c) => ({ name: c.name, photos: c.photos.filter((p) => p.status === "ready").length }));
  const settings = (state.schema ?? []).map((row) => ({ name: row.label, value: settingWords(state, row) }));
  return modelCard({ classes, model: state.model, settings, sha256: state.backbone?.sha256 });
}

/** Save the project as one ZIP (projectfile.js): photos, embeddings, model, model card. */
export async function saveProject() {
  try {
    await imagesLoaded;
    const stored = new Map((await store.readEmbeddings()).map((e) => [e.id, e]));
    const classes = [];
    for (const c of state.classes) {
      const photos = [];
      for (const p of c.photos) {
        if (!p.image) continue;
        const e = stored.get(p.id);
        photos.push({ id: p.id, added: p.added, bytes: new Uint8Array(await p.image.arrayBuffer()), embeddings: e?.embeddings ?? null, viewsKey: e?.viewsKey });
      }
      classes.push({ name: c.name, photos });
    }
    const zip = await writeProject({ classes, settings: state.settings, model: state.model, backbone: state.backbone, card: currentCard() });
    download(new Blob([zip], { type: "application/zip" }), "fewshot-project.zip");
    update({ notice: "" });
  } catch (e) {
    update({ notice: `Could not save the project: ${e.message}` });
  }
}

/** A ZIP of a page that classifies with this model anywhere (webapp.js). */
export async function exportWebApp() {
  if (!state.model) return;
  try {
    const read = async (path) => {
      const response = await fetch(path);
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    };
    const zip = await webAppZip({ read, model: state.model.bytes, card: currentCard() });
    download(new Blob([zip], { type: "application/zip" }), "fewshot-web-app.zip");
  } catch (e) {
    update({ notice: `Could not export the web app: ${e.message}` });
  }
}

export const showModelCard = (open) => update({ card: open ? currentCard() : null });

export function downloadModelCard() {
  download(new Blob([currentCard()], { type: "text/markdown" }), "MODEL_CARD.md");
}

export function exportModel() {
  if (state.model) download(new Blob([state.model.bytes]), "model.fewshot");
}

/** The model as one .tflite file that LiteRT runs without Fewshot (src/export.rs). */
export async function exportTflite() {
  if (!state.model) return;
  try {
    const { bytes } = await engine.call(Op.ExportTflite);
    download(new Blob([bytes], { type: "application/octet-stream" }), "fewshot-model.tflite");
  } catch (e) {
    update({ notice: `Could not export the TFLite model: ${e.message}` });
  }
}

/** A new, empty project beside the others; this page opens it. */
export async function newProject() {
  try {
    const taken = new Set((state.projects ?? []).map((p) => p.name));
    let n = (state.projects?.length ?? 0) + 1;
    while (taken.has(`Project ${n}`)) n++;
    const record = await store.addProject(`Project ${n}`, { classes: [newClass("Class 1"), newClass("Class 2")], settings: {}, model: null });
    await switchTo(record.db, `A new project, "${record.name}": your other projects are under Project.`);
  } catch (e) {
    update({ notice: `Could not start a new project (${e.message}); this one is unchanged.` });
  }
}

/** Open another of the projects kept in this browser. */
export async function openKeptProject(db) {
  if (db === state.project?.db) return;
  if (allPhotos().some(({ photo }) => photo.status === "embedding" && photo.source)) {
    update({ project: state.project }); // the list shows this one again
    return update({ notice: "Photos are still being added: open another project when they are done, so that none is lost." });
  }
  await switchTo(db).catch((e) => update({ notice: `Could not open that project (${e.message}).` }));
}

export async function renameProject(name) {
  name = name?.trim().slice(0, 80);
  if (!name || !state.project) return;
  try {
    await store.renameProject(state.project.db, name);
    update({ projects: await store.projects(), project: { ...state.project, name } });
  } catch (e) {
    update({ notice: `Could not rename the project (${e.message}).` });
  }
}

export async function duplicateProject() {
  if (!state.project) return;
  try {
    clearTimeout(metaTimer);
    if (!state.readOnly) await store.putMeta(state);
    const record = await store.duplicateProject(state.project.db, `${state.project.name} (copy)`.slice(0, 80));
    await switchTo(record.db, `This is a copy of "${state.project.name}", called "${record.name}": the original is under Project.`);
  } catch (e) {
    update({ notice: `Could not duplicate the project (${e.message}); nothing changed.` });
  }
}

/** Delete the project that is open (after the person confirms), and open another. */
export async function deleteProject({ confirm }) {
  if (!state.project) return;
  const photos = allPhotos().length;
  if (!confirm(`Delete the project "${state.project.name}" and its ${photos} photo${photos === 1 ? "" : "s"} from this browser? Save it first if you may want it again.`)) return;
  try {
    const gone = state.project;
    await store.deleteProject(gone.db);
    const rest = (await store.projects()).filter((p) => p.db !== gone.db);
    const next = rest.at(-1) ?? (await store.addProject("Project 1", { classes: [newClass("Class 1"), newClass("Class 2")], settings: {}, model: null }));
    await switchTo(next.db, `The project "${gone.name}" was deleted.`);
  } catch (e) {
    update({ notice: `Could not delete the project (${e.message}).` });
  }
}

// ---------- offline, install, update ----------

let applyNewVersion = null;
let promptInstall = null;

/** What offline.js hears from the browser. */
export const offline = {
  onReady: () => update({ app: { ...state.app, offline: true } }),
  onUpdate: (apply) => {
    applyNewVersion = apply;
    update({ app: { ...state.app, update: true } });
  },
  onInstallable: (install) => {
    promptInstall = install;
    update({ app: { ...state.app, installable: Boolean(install) } });
  },
};

export const install = () => promptInstall?.();

/** Reload into the new version, once every photo given is stored (a reload would drop those
 * still being read). */
export function applyUpdate() {
  if (allPhotos().some(({ photo }) => photo.status === "embedding" && photo.source)) {
    return update({ notice: "Photos are still being added: reload when they are done, so that none is lost." });
  }
  applyNewVersion?.();
}

// ---------- classes and photos ----------

/** After a change to the classes: keep it, and tell the engine. */
function classesChanged() {
  update({});
  saveMeta();
  syncClasses();
}

export function addClass() {
  let n = state.classes.length + 1;
  while (state.classes.some((c) => c.name === `Class ${n}`)) n++;
  state.classes.push(newClass(`Class ${n}`));
  classesChanged();
}

export function renameClass(id, name) {
  const c = findClass(id);
  if (!c) return;
  c.name = name;
  classesChanged();
}

export function deleteClass(id, { confirm }) {
  const c = findClass(id);
  if (!c || (c.photos.length && !confirm(`Delete “${c.name}” and its ${c.photos.length} photos?`))) return;
  store.deletePhotos(c.photos.map((p) => p.id)).catch((e) => update({ notice: `Could not delete the photos: ${e.message}` }));
  state.classes = state.classes.filter((x) => x.id !== id);
  classesChanged();
}

export function removePhoto(classId, photoId) {
  const c = findClass(classId);
  if (!c) return;
  c.photos = c.photos.filter((p) => p.id !== photoId);
  store.deletePhotos([photoId]).catch((e) => update({ notice: `Could not delete the photo: ${e.message}` }));
  classesChanged();
}

export function movePhoto(fromId, photoId, toId) {
  const [from, to] = [findClass(fromId), findClass(toId)];
  const photo = from?.photos.find((p) => p.id === photoId);
  if (!photo || !to) return;
  from.photos = from.photos.filter((p) => p !== photo);
  to.photos.push(photo);
  store.movePhoto(photo.id, to.id).catch((e) => update({ notice: `Could not save the move: ${e.message}` }));
  classesChanged();
}

/** Pasted images: into the class whose card has focus, else classified when there is a
 * model, else into the first class. */
export function paste(files, classId) {
  if (classId) addFiles(classId, files.map((file) => ({ file, folder: null })));
  else if (state.model) classify(files[0]);
  else addFiles(null, files.map((file) => ({ file, folder: null })));
}

// ---------- settings, results ----------

/** Settings go to the engine, which knows their limits; a refused one is said and the
 * control shows the setting in use again. */
export async function changeSettings(patch, base = state.settings) {
  const settings = { ...base, ...patch };
  try {
    if (state.engine.status === "ready") await applySettings(settings);
    update({ settings, notice: "" });
    saveMeta();
    embedQueue();
  } catch (e) {
    update({ notice: `${e.message[0].toUpperCase()}${e.message.slice(1)}.` });
  }
}

export const resetSettings = () => changeSettings({}, {});

export const stop = () => engine.call(Op.Stop);

export const showHeat = (on) => update({ showHeat: on });

/** Show the photos behind a confusion-matrix cell; the same cell again hides them. */
export function inspect(actual, predicted) {
  const same = state.inspect?.actual === actual && state.inspect?.predicted === predicted;
  update({ inspect: same ? null : { actual, predicted } });
}
