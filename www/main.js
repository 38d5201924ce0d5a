// Boot and events: restore the project, start the engine, and wire every control. Handlers
// call the engine or the store, then update(); only render.js touches the DOM. Every rule
// (class names, what training needs, settings' limits) is the engine's: the page shows the
// engine's error, of the kind protocol.js names.
import { EngineClient } from "./engine.js";
import { Op, Kind, restartFor } from "./protocol.js";
import * as store from "./store.js";
import * as photos from "./photos.js";
import { state, update, allPhotos, newId, classSpecs } from "./state.js";

const engine = new EngineClient();

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// ---------- project ----------

function newClass(name) {
  return { id: newId(), name, photos: [] };
}

/** A stored photo: ready unless the engine says it wants it embedded (markWaiting). Its
 * embeddings live in the engine's worker, not here. */
function photoFromStored({ id, image, added }) {
  return { id: id || newId(), added: added || Date.now(), image, status: "ready", message: "" };
}

/** A photo someone just gave (a file, a webcam frame): stored once the engine has read it. */
function newPhoto(source, added) {
  return { id: newId(), added, image: null, source, status: "embedding", message: "" };
}

async function restore() {
  let saved = null;
  try {
    saved = await store.load();
  } catch (e) {
    update({ notice: `Could not read the saved project (${e.message}); starting a new one.` });
  }
  if (!saved || saved.classes.length === 0) {
    update({ classes: [newClass("Class 1"), newClass("Class 2")] });
    return saveMeta();
  }
  const settings = { ...saved.settings };
  state.settings = settings;
  update({
    settings,
    model: saved.model || null,
    training: saved.model?.history ? { running: false, history: saved.model.history, seconds: saved.model.seconds, error: "" } : state.training,
    classes: saved.classes.map((c) => ({ id: c.id, name: c.name, photos: c.photos.map(photoFromStored) })),
  });
}

let metaTimer = null;
function saveMeta() {
  clearTimeout(metaTimer);
  metaTimer = setTimeout(() => store.putMeta(state).catch((e) => update({ notice: `Could not save: ${e.message}` })), 150);
}

const findClass = (id) => state.classes.find((c) => c.id === id);

function setProblems(key, messages) {
  update({ problems: { ...state.problems, [key]: messages } });
}

// ---------- the engine ----------

let ready = null;

function startEngine(device) {
  update({ engine: { status: "loading", progress: 0, device: null, note: "", message: "" } });
  ready = engine
    .load({ device, onProgress: (progress) => update({ engine: { ...state.engine, progress } }) })
    .then(async (info) => {
      state.schema = info.schema;
      await seedEngine();
      update({ engine: { status: "ready", progress: 1, device: info.device, note: info.note, message: "" } });
      embedQueue();
      return info;
    })
    .catch((e) => {
      update({ engine: { status: "error", progress: 0, device: null, note: "", message: e.message } });
      throw e;
    });
  ready.catch(() => {});
  return ready;
}

/** Hand the engine the project: settings, classes, the model; it reads the stored embeddings
 * itself and says which photos still need embedding. */
async function seedEngine() {
  await applySettings(state.settings);
  await syncClasses();
  markWaiting((await engine.call(Op.Restore)).waiting);
  if (state.model?.bytes) {
    try {
      await engine.call(Op.SetModel, { bytes: state.model.bytes });
    } catch (e) {
      update({ model: null, notice: `The saved model could not be used (${e.message}); train again.` });
    }
  }
}

/** After an error: restart the engine when the error says so (a lost GPU on the CPU), and
 * say so. Returns true when it restarted. */
async function recover(error) {
  const device = restartFor(error, state.engine.device);
  if (!device) return false;
  engine.restart();
  const where = device === "cpu" && state.engine.device === "webgpu" ? " on the CPU" : "";
  update({ notice: `The engine stopped (${error.message}). Restarting it${where}; your photos are safe.` });
  await startEngine(device).catch(() => {});
  return true;
}
engine.onFatal = (error) => recover(error);

/** The photos the engine has no embeddings for, after a settings change or a restore, are
 * embedded (again). */
function markWaiting(ids) {
  const waiting = new Set(ids);
  for (const { photo } of allPhotos()) if (waiting.has(photo.id) && photo.status === "ready") photo.status = "embedding";
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
async function applySettings(settings) {
  const { waiting, viewsKey } = await engine.call(Op.SetSettings, { settings });
  state.viewsKey = viewsKey;
  markWaiting(waiting);
}

let embedding = false;

/** Embed every photo that needs it, one at a time; a new photo's JPEG and every photo's
 * embeddings are stored. */
async function embedQueue() {
  if (embedding || state.engine.status !== "ready") return;
  embedding = true;
  try {
    for (;;) {
      const next = allPhotos().find(({ photo }) => photo.status === "embedding" && !photo.trying);
      if (!next) break;
      const { photo, classId } = next;
      photo.trying = true;
      try {
        const result = await engine.call(Op.AddPhoto, { photo: photo.id, image: photo.image ?? photo.source, store: !photo.image });
        if (result.image) Object.assign(photo, { image: result.image, source: null });
        photo.status = "ready";
      } catch (e) {
        if (await recover(e)) return;
        const owner = findClass(classId);
        if (!owner?.photos.includes(photo)) continue; // removed meanwhile
        setProblems(classId, [...(state.problems[classId] || []), `${photo.source?.name || "A photo"}: ${e.message}`]);
        if (photo.image) Object.assign(photo, { status: "error", message: e.message });
        else owner.photos = owner.photos.filter((p) => p !== photo); // never stored: nothing to keep
        photo.source = null;
        await syncClasses();
      } finally {
        photo.trying = false;
      }
      const owner = state.classes.find((c) => c.photos.includes(photo));
      if (owner && photo.image) await store.putPhoto(photo, owner.id).catch((e) => update({ notice: `Could not save a photo: ${e.message}` }));
      update({});
    }
  } finally {
    embedding = false;
  }
  if (allPhotos().some(({ photo }) => photo.status === "embedding" && !photo.trying)) embedQueue();
}

// ---------- adding photos ----------

/** Add image files to a class (or, with folder names, to a class per folder). The engine
 * reads each (decoding it once) and says what is not a photo. */
async function addFiles(classId, items) {
  let added = 0;
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
    target.photos.push(newPhoto(file, Date.now() + added++));
  }
  saveMeta();
  update({ problems: { ...state.problems, [classId]: [] }, training: { ...state.training, error: "" } });
  await syncClasses();
  embedQueue();
}

async function addBlobs(classId, blobs) {
  return addFiles(classId, blobs.map((file) => ({ file, folder: null })));
}

// ---------- training ----------

async function train() {
  const started = performance.now();
  update({ training: { running: true, history: [], validating: null, error: "" }, inspect: null });
  try {
    if (!(await syncClasses())) throw Object.assign(new Error(state.classRule), { kind: Kind.BadInput });
    const result = await engine.call(Op.Train, {}, {
      onProgress: (report) =>
        report.phase === "validating"
          ? update({ training: { ...state.training, validating: { fold: report.fold, folds: report.folds } } })
          : update({ training: { ...state.training, history: [...state.training.history, report] } }),
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
    const message = e.kind === Kind.BadInput ? `Not yet: ${e.message}.` : `Training failed: ${e.message}`;
    update({ training: { ...state.training, running: false, error: message } });
    recover(e);
  }
}

// ---------- trying the model ----------

let previewSource = null; // the last Blob classified, to redo after retraining

async function classify(blob) {
  setProblems("preview", []);
  if (!state.model) return;
  try {
    await ready;
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

async function toggleWebcam(target) {
  const video = target === "preview" ? $("preview-video") : document.querySelector(`[data-class-id="${target}"] .class-video`);
  const wasOn = state.webcam.on;
  const previous = state.webcam.target;
  stopAllWebcams();
  if (wasOn && previous === target) return;
  try {
    update({ webcam: { on: true, target } });
    await photos.startWebcam(video);
    if (target === "preview") webcamPreviewLoop(video);
  } catch (e) {
    update({ webcam: { on: false, target: null } });
    setProblems(target, [e.message]);
  }
}

function stopAllWebcams() {
  document.querySelectorAll("video").forEach((v) => photos.stopWebcam(v));
  stopCapture();
  update({ webcam: { on: false, target: null } });
}

async function webcamPreviewLoop(video) {
  while (state.webcam.on && state.webcam.target === "preview") {
    if (state.model && video.videoWidth) {
      try {
        const frame = await photos.webcamFrame(video);
        const { predictions, unfamiliar, heatmap } = await engine.call(Op.Predict, { image: frame }, { transfer: [frame] });
        if (state.webcam.on) update({ preview: { predictions, unfamiliar, heatmap, url: null, source: "webcam" } });
      } catch (e) {
        setProblems("preview", [e.message]);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } else {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function startCapture(classId, video) {
  stopCapture();
  const grab = async () => {
    if (!video.videoWidth) return;
    addBlobs(classId, [await photos.webcamFrame(video)]);
  };
  grab();
  captureTimer = setInterval(grab, 250);
}

function stopCapture() {
  clearInterval(captureTimer);
  captureTimer = null;
}

// ---------- files out ----------

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function openProject(file) {
  try {
    const project = await store.readProjectFile(file);
    const settings = { ...project.settings };
    const opened = project.classes.map((c) => ({ id: newId(), name: c.name, photos: c.photos.map((p, i) => ({ ...p, added: i })) }));
    // All or nothing: the open project stays until the new one is written in one transaction.
    await store.replace({ classes: opened, settings, model: project.model });
    const classes = opened.map((c) => ({ ...c, photos: c.photos.map(photoFromStored) }));
    stopAllWebcams();
    state.settings = settings;
    update({
      classes,
      settings,
      model: project.model,
      training: project.model?.history ? { running: false, history: project.model.history, seconds: project.model.seconds, error: "" } : { running: false, history: [], error: "" },
      inspect: null,
      preview: null,
      problems: {},
      notice: `Opened ${file.name}: ${classes.length} classes, ${allPhotos().length} photos.`,
    });
    if (state.engine.status === "ready") await seedEngine();
    embedQueue();
  } catch (e) {
    update({ notice: `Could not open ${file.name}: ${e.message}. Your current project is unchanged.` });
  }
}

// ---------- wiring ----------

function wire() {
  $("add-class").addEventListener("click", () => {
    let n = state.classes.length + 1;
    while (state.classes.some((c) => c.name === `Class ${n}`)) n++;
    state.classes.push(newClass(`Class ${n}`));
    update({});
    saveMeta();
    syncClasses();
    const inputs = document.querySelectorAll(".class-name");
    inputs[inputs.length - 1]?.focus();
  });

  const list = $("class-list");
  const classIdOf = (el) => el.closest("[data-class-id]")?.dataset.classId;
  list.addEventListener("input", (e) => {
    if (!e.target.matches(".class-name")) return;
    const c = findClass(classIdOf(e.target));
    c.name = e.target.value;
    update({});
    saveMeta();
    syncClasses();
  });
  list.addEventListener("click", (e) => {
    const id = classIdOf(e.target);
    if (e.target.matches(".delete-class")) {
      const c = findClass(id);
      if (c.photos.length && !confirm(`Delete “${c.name}” and its ${c.photos.length} photos?`)) return;
      store.deletePhotos(c.photos.map((p) => p.id));
      update({ classes: state.classes.filter((x) => x.id !== id) });
      saveMeta();
      syncClasses();
    } else if (e.target.matches(".remove")) {
      const photoId = e.target.closest(".thumb").dataset.photoId;
      const c = findClass(id);
      c.photos = c.photos.filter((p) => p.id !== photoId);
      store.deletePhotos([photoId]);
      update({});
      syncClasses();
    } else if (e.target.matches(".webcam")) {
      toggleWebcam(id);
    }
  });
  list.addEventListener("change", (e) => {
    const id = classIdOf(e.target);
    if (e.target.matches(".file-input")) addBlobs(id, [...e.target.files]);
    else if (e.target.matches(".folder-input")) addFiles(id, photos.pickedFolderFiles(e.target.files));
    else if (e.target.matches(".move") && e.target.value) {
      const photoId = e.target.closest(".thumb").dataset.photoId;
      const from = findClass(id);
      const to = findClass(e.target.value);
      const photo = from.photos.find((p) => p.id === photoId);
      from.photos = from.photos.filter((p) => p.id !== photoId);
      to.photos.push(photo);
      e.target.value = "";
      if (photo.image) store.putPhoto(photo, to.id);
      update({});
      syncClasses();
    }
    if (e.target.type === "file") e.target.value = "";
  });
  const capture = (e, on) => {
    if (!e.target.matches(".capture")) return;
    const id = classIdOf(e.target);
    if (on) startCapture(id, e.target.closest(".class-card").querySelector(".class-video"));
    else stopCapture();
  };
  list.addEventListener("pointerdown", (e) => capture(e, true));
  list.addEventListener("pointerup", (e) => capture(e, false));
  list.addEventListener("pointerleave", stopCapture, true);
  list.addEventListener("keydown", (e) => (e.key === " " || e.key === "Enter") && !e.repeat && capture(e, true));
  list.addEventListener("keyup", (e) => (e.key === " " || e.key === "Enter") && capture(e, false));

  // Drops: on a class card (files, folders), or anywhere on the class list for folders.
  list.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.target.closest(".drop")?.classList.add("over");
  });
  list.addEventListener("dragleave", (e) => e.target.closest(".drop")?.classList.remove("over"));
  list.addEventListener("drop", async (e) => {
    e.preventDefault();
    e.target.closest(".drop")?.classList.remove("over");
    const id = classIdOf(e.target) || state.classes[0]?.id;
    addFiles(id, await photos.droppedFiles(e.dataTransfer));
  });

  $("show-heat").addEventListener("change", (e) => update({ showHeat: e.target.checked }));
  const preview = $("preview-drop");
  preview.addEventListener("dragover", (e) => e.preventDefault());
  preview.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) classify(file);
  });
  $("preview-file").addEventListener("change", (e) => {
    if (e.target.files[0]) classify(e.target.files[0]);
    e.target.value = "";
  });
  $("preview-webcam").addEventListener("click", () => toggleWebcam("preview"));

  // Paste: into the class whose card has focus, else into "Try it".
  document.addEventListener("paste", (e) => {
    const files = photos.pastedFiles(e);
    if (files.length === 0) return;
    const id = classIdOf(document.activeElement || document.body);
    if (id) addBlobs(id, files);
    else if (state.model) classify(files[0]);
    else addBlobs(state.classes[0].id, files);
  });

  $("train").addEventListener("click", train);
  $("stop").addEventListener("click", () => engine.call(Op.Stop));

  /** Settings go to the engine, which knows their limits; a refused one is said and the
   * control shows the setting in use again. */
  const changeSettings = async (settings) => {
    try {
      if (state.engine.status === "ready") await applySettings(settings);
      update({ settings, notice: "" });
      saveMeta();
      embedQueue();
    } catch (e) {
      update({ notice: `${e.message[0].toUpperCase()}${e.message.slice(1)}.` });
    }
  };
  $("hidden-units").addEventListener("change", (e) => changeSettings({ ...state.settings, hiddenUnits: Number(e.target.value) }));
  $("augment").addEventListener("change", (e) => changeSettings({ ...state.settings, mirror: e.target.checked }));
  $("keep-aspect").addEventListener("change", (e) => changeSettings({ ...state.settings, framing: e.target.checked ? "pad" : "crop" }));
  $("reset-settings").addEventListener("click", () => changeSettings({}));

  $("confusion").addEventListener("click", (e) => {
    const cell = e.target.closest(".cell");
    if (!cell) return;
    const inspect = { actual: Number(cell.dataset.actual), predicted: Number(cell.dataset.predicted) };
    const same = state.inspect?.actual === inspect.actual && state.inspect?.predicted === inspect.predicted;
    update({ inspect: same ? null : inspect });
  });

  $("save-project").addEventListener("click", async () => {
    try {
      download(await store.projectFile(state), "project.fewshot-project");
      update({ notice: "" });
    } catch (e) {
      update({ notice: `Could not save the project: ${e.message}` });
    }
  });
  $("open-project").addEventListener("change", (e) => {
    if (e.target.files[0]) openProject(e.target.files[0]);
    e.target.value = "";
  });
  $("export-model").addEventListener("click", () => {
    if (state.model) download(new Blob([state.model.bytes]), "model.fewshot");
  });
  $("new-project").addEventListener("click", async () => {
    if (allPhotos().length && !confirm("Start a new project? Save this one first if you want to keep it.")) return;
    const classes = [newClass("Class 1"), newClass("Class 2")];
    await store.replace({ classes, settings: {}, model: null });
    stopAllWebcams();
    update({ classes, settings: {}, model: null, training: { running: false, history: [], error: "" }, preview: null, inspect: null, problems: {}, notice: "" });
    if (state.engine.status === "ready") await seedEngine();
  });

  // Labels act as buttons for their hidden file inputs: make them work from the keyboard.
  document.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && e.target.matches("label.button")) {
      e.preventDefault();
      e.target.querySelector("input")?.click();
    }
  });
}

wire();
restore().then(() => {
  update({});
  return startEngine(params.get("device") || "auto");
});
