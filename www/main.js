// Boot and events: restore the project, start the engine, and wire every control. Handlers
// call the engine or the store, then update(); only render.js touches the DOM.
import * as engine from "./engine.js";
import * as store from "./store.js";
import * as photos from "./photos.js";
import { state, update, allPhotos, pendingCount, newId, seeing, DEFAULT_SETTINGS } from "./state.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// ---------- project ----------

function newClass(name) {
  return { id: newId(), name, photos: [] };
}

/** A stored photo; its embeddings count until the engine says which views it wants
 * (refreshViews). */
function photoFromStored({ id, image, embeddings, variantsKey, added }) {
  const ready = embeddings && variantsKey && (!state.views || variantsKey === JSON.stringify(state.views));
  return {
    id: id || newId(),
    added: added || Date.now(),
    image,
    url: URL.createObjectURL(image),
    embeddings: ready ? embeddings : null,
    variantsKey: ready ? variantsKey : null,
    status: ready ? "ready" : "embedding",
    message: "",
  };
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
  const settings = { ...DEFAULT_SETTINGS, ...saved.settings };
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
      await refreshViews();
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

/** The GPU failed (device lost, a crashed worker): say so, and carry on on the CPU. */
async function fallBackToCpu(error) {
  if (state.engine.device !== "webgpu") return false;
  engine.restart();
  update({ notice: `The GPU stopped working (${error.message}). Continuing on the CPU; your photos are safe.` });
  await startEngine("cpu");
  return true;
}

/** Ask the engine which views photos are embedded in for the current settings (and its
 * defaults); photos embedded otherwise are embedded again. */
async function refreshViews() {
  const { views, defaults } = await engine.views(seeing(state.settings));
  state.views = views;
  state.defaults = defaults;
  const key = JSON.stringify(views);
  for (const { photo } of allPhotos())
    if (photo.status === "ready" && photo.variantsKey !== key) {
      photo.status = "embedding";
      photo.embeddings = null;
    }
  update({});
}

let embedding = false;

/** Embed every photo that needs it, one at a time, persisting each. */
async function embedQueue() {
  if (embedding || state.engine.status !== "ready" || !state.views) return;
  embedding = true;
  try {
    for (;;) {
      const next = allPhotos().find(({ photo }) => photo.status === "embedding");
      if (!next) break;
      const { photo, classId } = next;
      const wanted = state.views;
      try {
        photo.embeddings = await engine.embed(photo.image, wanted);
        photo.variantsKey = JSON.stringify(wanted);
        photo.status = "ready";
      } catch (e) {
        if (await fallBackToCpu(e)) return;
        photo.status = "error";
        photo.message = e.message;
        setProblems(classId, [...(state.problems[classId] || []), `A photo could not be read: ${e.message}`]);
      }
      if (findClass(classId)?.photos.includes(photo)) await store.putPhoto(photo, classId).catch(() => {});
      update({});
    }
  } finally {
    embedding = false;
  }
  if (allPhotos().some(({ photo }) => photo.status === "embedding")) embedQueue();
}

// ---------- adding photos ----------

/** Add image files to a class (or, with folder names, to a class per folder). */
async function addFiles(classId, items) {
  const problems = [];
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
    try {
      const image = await photos.storedImage(file);
      const photo = photoFromStored({ image, added: Date.now() + added });
      target.photos.push(photo);
      added++;
      store.putPhoto(photo, target.id).catch((e) => update({ notice: `Could not save a photo: ${e.message}` }));
      if (added % 8 === 0) update({});
    } catch (e) {
      problems.push(`${file.name || "pasted image"}: ${e.message}`);
    }
  }
  saveMeta();
  update({ problems: { ...state.problems, [classId]: problems }, training: { ...state.training, error: "" } });
  embedQueue();
}

async function addBlobs(classId, blobs) {
  return addFiles(classId, blobs.map((file) => ({ file, folder: null })));
}

// ---------- training ----------

async function train() {
  const ready = allPhotos().filter(({ photo }) => photo.status === "ready");
  const waiting = pendingCount();
  if (waiting) {
    return update({ training: { ...state.training, error: `Wait a moment: ${waiting} photo${waiting === 1 ? " is" : "s are"} still being prepared.` } });
  }
  const withPhotos = state.classes.filter((c) => c.photos.some((p) => p.status === "ready"));
  if (withPhotos.length < 2) {
    return update({
      training: { ...state.training, error: `Training needs photos in at least two classes; ${withPhotos.length === 1 ? "only one class has" : "no class has"} photos yet.` },
    });
  }
  const empty = state.classes.find((c) => !c.photos.some((p) => p.status === "ready"));
  if (empty) {
    return update({ training: { ...state.training, error: `“${empty.name}” has no photos: add some, or delete the class.` } });
  }
  const labels = state.classes.map((c) => c.name);
  const n = ready.length;
  const perPhoto = ready[0].photo.embeddings.length;
  const embeddings = new Float32Array(n * 1280);
  const targets = new Uint32Array(n);
  const variantsArray = new Float32Array(n * (perPhoto - 1) * 1280);
  const variantOf = new Uint32Array(n * (perPhoto - 1));
  ready.forEach(({ photo, classIndex }, i) => {
    embeddings.set(photo.embeddings[0], i * 1280);
    targets[i] = classIndex;
    for (let v = 1; v < perPhoto; v++) {
      const at = i * (perPhoto - 1) + (v - 1);
      variantsArray.set(photo.embeddings[v], at * 1280);
      variantOf[at] = i;
    }
  });
  const settings = state.settings;
  const config = settings.hiddenUnits === undefined ? {} : { hiddenUnits: settings.hiddenUnits };
  const started = performance.now();
  update({ training: { running: true, history: [], validating: null, error: "" }, inspect: null });
  try {
    const result = await engine.train(
      { labels, embeddings, targets, variants: variantsArray, variantOf, config, seeing: seeing(settings) },
      (report) =>
        report.phase === "validating"
          ? update({ training: { ...state.training, validating: { fold: report.fold, folds: report.folds } } })
          : update({ training: { ...state.training, history: [...state.training.history, report] } }),
    );
    const seconds = (performance.now() - started) / 1000;
    const checkedPhotos = (result.predictions || []).map((predicted, index) => ({
      photoId: ready[index].photo.id,
      actual: ready[index].classIndex,
      predicted,
      confidence: result.confidence[index],
    }));
    const model = {
      bytes: result.model,
      key: newId(),
      labels,
      validation: result.validation,
      checkedPhotos,
      suspicious: (result.suspicious || []).map((index) => ready[index].photo.id),
      duplicates: (result.duplicates || []).map(([i, j]) => [ready[i].photo.id, ready[j].photo.id]),
      history: result.history,
      seconds,
    };
    update({ model, training: { running: false, history: result.history, validating: null, stopped: result.stopped, seconds, error: "" } });
    saveMeta();
    refreshPreview();
  } catch (e) {
    update({ training: { ...state.training, running: false, error: `Training failed: ${e.message}` } });
    fallBackToCpu(e);
  }
}

// ---------- trying the model ----------

let previewSource = null; // the last Blob classified, to redo after retraining

async function classify(blob) {
  setProblems("preview", []);
  if (!state.model) return;
  try {
    await ready;
    const image = await photos.storedImage(blob);
    previewSource = image;
    const { predictions, unfamiliar, heatmap } = await engine.predict({ key: state.model.key, bytes: state.model.bytes }, image);
    if (state.preview?.url && state.preview.url !== state.preview.keep) URL.revokeObjectURL(state.preview.url);
    update({ preview: { predictions, unfamiliar, heatmap, url: URL.createObjectURL(image), source: "photo" } });
  } catch (e) {
    setProblems("preview", [`${blob.name || "That image"}: ${e.message}`]);
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
        const { predictions, unfamiliar, heatmap } = await engine.predict({ key: state.model.key, bytes: state.model.bytes }, frame);
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
    const frame = await photos.webcamFrame(video);
    addBlobs(classId, [new File([frame], `webcam-${Date.now()}.jpg`, { type: "image/jpeg" })]);
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
    stopAllWebcams();
    await store.clear();
    const settings = { ...DEFAULT_SETTINGS, ...project.settings };
    state.settings = settings;
    const classes = project.classes.map((c) => ({ id: newId(), name: c.name, photos: c.photos.map(photoFromStored) }));
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
    for (const c of classes) for (const p of c.photos) await store.putPhoto(p, c.id);
    saveMeta();
    embedQueue();
  } catch (e) {
    update({ notice: `Could not open ${file.name}: ${e.message}. Your current project is unchanged.` });
  }
}

// ---------- wiring ----------

function wire() {
  $("add-class").addEventListener("click", () => {
    state.classes.push(newClass(`Class ${state.classes.length + 1}`));
    update({});
    saveMeta();
    const inputs = document.querySelectorAll(".class-name");
    inputs[inputs.length - 1]?.focus();
  });

  const list = $("class-list");
  const classIdOf = (el) => el.closest("[data-class-id]")?.dataset.classId;
  list.addEventListener("input", (e) => {
    if (!e.target.matches(".class-name")) return;
    const c = findClass(classIdOf(e.target));
    c.name = e.target.value.trim() || "Unnamed";
    update({});
    saveMeta();
  });
  list.addEventListener("click", (e) => {
    const id = classIdOf(e.target);
    if (e.target.matches(".delete-class")) {
      const c = findClass(id);
      if (c.photos.length && !confirm(`Delete “${c.name}” and its ${c.photos.length} photos?`)) return;
      store.deletePhotos(c.photos.map((p) => p.id));
      update({ classes: state.classes.filter((x) => x.id !== id) });
      saveMeta();
    } else if (e.target.matches(".remove")) {
      const photoId = e.target.closest(".thumb").dataset.photoId;
      const c = findClass(id);
      c.photos = c.photos.filter((p) => p.id !== photoId);
      store.deletePhotos([photoId]);
      update({});
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
      store.putPhoto(photo, to.id);
      update({});
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
  $("stop").addEventListener("click", () => engine.stop());

  const numbers = { "hidden-units": "hiddenUnits" };
  for (const [id, key] of Object.entries(numbers)) {
    $(id).addEventListener("change", (e) => {
      const value = Number(e.target.value);
      const input = e.target;
      if (!Number.isFinite(value) || value < Number(input.min) || value > Number(input.max)) {
        update({ notice: `${input.parentElement.firstChild.textContent.trim()} must be between ${input.min} and ${input.max}.` });
        input.value = state.settings[key];
        return;
      }
      update({ settings: { ...state.settings, [key]: value }, notice: "" });
      saveMeta();
    });
  }
  const changeSeeing = async (patch) => {
    update({ settings: { ...state.settings, ...patch } });
    saveMeta();
    await refreshViews();
    embedQueue();
  };
  $("augment").addEventListener("change", (e) => changeSeeing({ mirror: e.target.checked }));
  $("keep-aspect").addEventListener("change", (e) => changeSeeing({ framing: e.target.checked ? "pad" : "crop" }));
  $("reset-settings").addEventListener("click", async () => {
    state.settings = { ...DEFAULT_SETTINGS };
    await changeSeeing({});
  });

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
    stopAllWebcams();
    await store.clear();
    update({ classes: [newClass("Class 1"), newClass("Class 2")], model: null, training: { running: false, history: [], error: "" }, preview: null, inspect: null, problems: {}, notice: "" });
    saveMeta();
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
