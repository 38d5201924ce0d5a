// render(state) draws the state into the DOM: every DOM write of the page lives here. Class
// cards and thumbnails are reused by id, so that typing a class name keeps its focus. Label
// names are user input: they are only ever set with textContent or value.
import { drawChart, fitCanvas, LEGEND } from "./chart.js";
import { setting, settingOff } from "./state.js";
import { verdict as verdictOf } from "../seam/verdict.js";

const $ = (id) => document.getElementById(id);
const cards = new Map(); // class id -> card element
const thumbs = new Map(); // photo id -> thumbnail element

/** What the class cards show: a change to anything else (training's progress, many times a
 * second) leaves them be. Measured while training 2,000 photos, re-rendering every card on
 * each step took 1.5 s of the page's main thread (tests/bench/page.mjs, PROFILE=1). */
const CARD_KEYS = new Set(["classes", "problems", "webcam", "engine", "readOnly", "model", "schema"]);
/** What the results (figures, confusion matrix, the photos of one cell) show: while a model is
 * retrained, the old one's results stay as they are instead of being rebuilt at every step. */
const RESULT_KEYS = new Set(["model", "inspect", "classes"]);

/** Render the page; `changed`: the keys of state that changed (none: anything may have). */
export function render(state, changed = []) {
  lastState = state;
  renderEngine(state);
  if (changed.length === 0 || changed.some((key) => CARD_KEYS.has(key))) renderClasses(state);
  renderTraining(state);
  if (changed.length === 0 || changed.some((key) => RESULT_KEYS.has(key))) renderResults(state);
  renderPreview(state);
  const notice = $("notice");
  notice.hidden = !state.notice;
  notice.textContent = state.notice;
  $("export-model").disabled = !state.model;
  $("model-card").disabled = !state.model;
  $("export-webapp").disabled = !state.model;
  $("export-tflite").disabled = !state.model;
  renderApp(state);
  renderCard(state);
  renderReadOnly(state);
  renderProjects(state);
}

/** The projects kept in this browser, the open one chosen. Names are the person's: text only. */
function renderProjects({ projects, project }) {
  const select = $("project-select");
  const key = JSON.stringify([projects.map((p) => [p.db, p.name]), project?.db]);
  if (select.dataset.shown === key) return;
  select.dataset.shown = key;
  select.replaceChildren(
    ...projects.map((p) => {
      const option = document.createElement("option");
      option.value = p.db;
      option.textContent = p.name;
      option.selected = p.db === project?.db;
      return option;
    }),
  );
}

function renderCard({ card }) {
  const dialog = $("card-dialog");
  if (card !== null && card !== undefined) {
    $("card-text").textContent = card;
    if (!dialog.open) dialog.showModal();
  } else if (dialog.open) dialog.close();
}

/** A tab that follows another: what would change the project does not respond. */
function renderReadOnly({ readOnly }) {
  for (const id of ["class-list", "add-class", "advanced"]) $(id).inert = readOnly;
  for (const id of ["open-project", "new-project", "rename-project", "duplicate-project", "delete-project"]) $(id).closest("label, button").inert = readOnly;
  document.body.dataset.readOnly = readOnly ? "yes" : "no";
}

function renderApp({ app }) {
  $("install").hidden = !app.installable;
  $("update").hidden = !app.update;
  document.body.dataset.offline = app.offline ? "ready" : "no";
  $("offline-status").hidden = !app.offline;
}

/** The <video> of a webcam target: "preview" or a class id. */
export function videoFor(target) {
  return target === "preview" ? $("preview-video") : cards.get(target)?.querySelector(".class-video") ?? null;
}

/** Offer a Blob as a download named `name`. */
export function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function renderEngine({ engine }) {
  const status = $("engine-status");
  status.dataset.state = engine.status;
  if (engine.status === "loading") {
    status.textContent = engine.progress < 1 ? `Downloading the model… ${Math.round(engine.progress * 100)} %` : "Preparing the model…";
  } else if (engine.status === "ready") {
    // Which device, and no claim of which is faster: that is measured, in the engine's note
    // (why this device, and how long one pass of the network took on it).
    status.textContent = engine.device === "webgpu" ? "Ready on WebGPU" : "Ready on CPU";
    status.title = engine.note;
  } else {
    status.textContent = `Not working: ${engine.message}`;
  }
  document.body.dataset.engine = engine.status === "ready" ? engine.device : engine.status;
}

function renderClasses(state) {
  const list = $("class-list");
  const seen = new Set();
  const grids = [];
  state.classes.forEach((c, index) => {
    seen.add(c.id);
    let card = cards.get(c.id);
    if (!card) {
      card = $("class-template").content.firstElementChild.cloneNode(true);
      card.dataset.classId = c.id;
      cards.set(c.id, card);
      // A class added by the person (not one restored with the page) gets the focus to be named.
      if (classesShown) queueMicrotask(() => card.querySelector(".class-name").focus());
    }
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
    const name = card.querySelector(".class-name");
    if (document.activeElement !== name && name.value !== c.name) name.value = c.name;
    const ready = c.photos.filter((p) => p.status === "ready").length;
    const busy = c.photos.filter((p) => p.status === "embedding").length;
    card.querySelector(".count").textContent =
      `${ready} photo${ready === 1 ? "" : "s"}` + (busy ? ` · ${busy} to go` : "");
    card.querySelector(".delete-class").setAttribute("aria-label", `Delete class ${c.name}`);
    grids.push([card.querySelector(".thumbs"), c]);
    const problems = card.querySelector(".problems");
    problems.replaceChildren(...(state.problems[c.id] || []).map(problemItem));
    const capturing = state.webcam.on && state.webcam.target === c.id;
    card.querySelector(".webcam").textContent = capturing ? "Close webcam" : "Webcam";
    card.querySelector(".capture").hidden = !capturing;
    card.querySelector(".switch-camera").hidden = !capturing || state.webcam.cameras.length < 2;
    card.querySelector(".class-video").hidden = !capturing;
    card.classList.toggle("has-moves", state.classes.length > 1);
  });
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      const grid = card.querySelector(".thumbs");
      screenWatch?.unobserve(grid);
      nearScreen.delete(grid);
      card.remove();
      cards.delete(id);
    }
  }
  // Every grid is measured before any is written: one layout, not one per class.
  const sizes = grids.map(([container]) => measure(container));
  grids.forEach(([container, c], i) => renderThumbs(container, c, state, sizes[i]));
  if (state.classes.length) classesShown = true;
  const photoIds = new Set(state.classes.flatMap((c) => c.photos.map((p) => p.id)));
  for (const id of [...thumbs.keys()]) if (!photoIds.has(id)) forget(id);
}

function problemItem(message) {
  const li = document.createElement("li");
  li.textContent = message;
  return li;
}

/** Thumbnail grid geometry, in pixels (style.css sizes .thumb the same). */
const THUMB = 56;
const GAP = 6;
const STEP = THUMB + GAP;
/** Rows a class shows before its grid scrolls. */
const ROWS_SHOWN = 4;

/** The grids on or near the screen (an IntersectionObserver's word): only these hold
 * thumbnails. Measured on a project of 10,000 photos in 10 classes, making every class's
 * first rows at once (about 400 elements, object URLs and menus) took 300 ms of the page's
 * opening. */
const nearScreen = new Set();
const screenWatch =
  typeof IntersectionObserver === "undefined"
    ? null
    : new IntersectionObserver(
        (entries) => {
          for (const { target, isIntersecting } of entries) {
            if (isIntersecting) nearScreen.add(target);
            else nearScreen.delete(target);
            if (lastState) renderThumbs(target, classOf(target), lastState);
          }
        },
        { rootMargin: "50% 0px" },
      );

/** A class's thumbnails, virtualised: only a grid near the screen, and only the rows in view
 * of its scroll window, hold an element and an object URL, so that a class of 10,000 photos
 * costs what a screenful does. Scrolling the grid or the page renders again (wired once per
 * grid). `size`: the grid's (measure()), when the caller has read it. */
const measure = (container) => ({ width: container.clientWidth, scrollTop: container.scrollTop });
function renderThumbs(container, c, state, { width, scrollTop } = measure(container)) {
  if (!container.dataset.wired) {
    container.dataset.wired = "1";
    const again = () => requestAnimationFrame(() => lastState && renderThumbs(container, classOf(container), lastState));
    container.addEventListener("scroll", again, { passive: true });
    screenWatch?.observe(container);
    // A grid that gets narrower or wider (a phone turned, a window resized, the layout's
    // columns stacking) lays its thumbnails out again in as many columns as now fit.
    let wide = container.clientWidth;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        if (container.clientWidth !== wide) (wide = container.clientWidth), again();
      }).observe(container);
    }
  }
  const columns = Math.max(1, Math.floor((width + GAP) / STEP) || 6);
  const rows = Math.ceil(c.photos.length / columns);
  container.style.height = `${Math.min(rows, ROWS_SHOWN) * STEP}px`;
  container.hidden = c.photos.length === 0;
  let sizer = container.querySelector(".sizer");
  if (!sizer) {
    sizer = document.createElement("div");
    sizer.className = "sizer";
    container.append(sizer);
  }
  sizer.style.height = `${rows * STEP}px`;
  const near = !screenWatch || nearScreen.has(container);
  const first = Math.max(0, Math.floor(scrollTop / STEP) - 1);
  const last = near ? Math.min(rows, Math.ceil((scrollTop + ROWS_SHOWN * STEP) / STEP) + 1) : 0;
  const shown = new Set();
  const options = [["", "Move to…"], ...state.classes.filter((o) => o.id !== c.id).map((o) => [o.id, o.name])];
  for (let i = first * columns; i < Math.min(c.photos.length, last * columns); i++) {
    const photo = c.photos[i];
    shown.add(photo.id);
    const el = thumbFor(photo, container);
    el.style.transform = `translate(${(i % columns) * STEP}px, ${Math.floor(i / columns) * STEP}px)`;
    el.classList.toggle("busy", photo.status === "embedding");
    el.classList.toggle("failed", photo.status === "error");
    el.title = photo.status === "error" ? photo.message : "";
    const img = el.querySelector("img");
    if (photo.image && !img.getAttribute("src")) img.src = urlOf(photo);
    el.querySelector(".remove").setAttribute("aria-label", `Remove photo from ${c.name}`);
    const move = el.querySelector(".move");
    if (move.dataset.options !== JSON.stringify(options)) {
      move.dataset.options = JSON.stringify(options);
      move.replaceChildren(
        ...options.map(([value, label]) => {
          const o = document.createElement("option");
          o.value = value;
          o.textContent = label;
          return o;
        }),
      );
    }
    move.hidden = options.length === 1;
  }
  for (const el of [...container.querySelectorAll(".thumb")]) {
    if (shown.has(el.dataset.photoId)) continue;
    forget(el.dataset.photoId);
  }
}

/** The element of a photo's thumbnail in `container`, made (or moved there) when needed. */
function thumbFor(photo, container) {
  let el = thumbs.get(photo.id);
  if (!el) {
    el = document.createElement("figure");
    el.className = "thumb";
    el.dataset.photoId = photo.id;
    const img = document.createElement("img");
    img.alt = "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "✕";
    const move = document.createElement("select");
    move.className = "move";
    move.setAttribute("aria-label", "Move this photo to another class");
    el.append(img, remove, move);
    thumbs.set(photo.id, el);
  }
  if (el.parentElement !== container) container.append(el);
  return el;
}

/** Object URLs of the photos shown, by photo id: made when shown, revoked when not. */
const urls = new Map();
function urlOf(photo) {
  if (!urls.has(photo.id)) urls.set(photo.id, { url: URL.createObjectURL(photo.image), image: photo.image });
  return urls.get(photo.id).url;
}

/** A photo's thumbnail leaves the screen: its element and its object URL go. */
function forget(photoId) {
  thumbs.get(photoId)?.remove();
  thumbs.delete(photoId);
  const u = urls.get(photoId);
  if (u) URL.revokeObjectURL(u.url);
  urls.delete(photoId);
}

let lastState = null;
/** Whether the classes have been shown once (restored ones are not focused). */
let classesShown = false;
const classOf = (container) => lastState.classes.find((c) => c.id === container.closest("[data-class-id]")?.dataset.classId) ?? { photos: [] };

/** The settings' controls, one a row of the engine's schema (built once, when it arrives), each
 * named `data-setting` for events.js, showing the setting in use and whether it is offered. */
function renderSettings(state) {
  const box = $("setting-controls");
  if (!state.schema) return;
  if (box.dataset.built !== "yes") {
    box.replaceChildren(...state.schema.map(settingControl));
    box.dataset.built = "yes";
  }
  for (const row of state.schema) {
    const value = setting(state, row.key);
    const off = settingOff(state, row);
    for (const input of box.querySelectorAll(`[data-setting="${row.key}"]`)) {
      if (row.kind === "boolean") input.checked = !!value;
      else if (row.kind === "choice") input.checked = input.value === value;
      else if (document.activeElement !== input) input.value = value ?? "";
      input.disabled = !!off;
    }
    const why = box.querySelector(`[data-setting-off="${row.key}"]`);
    why.hidden = !off;
    why.textContent = off ? `(${off})` : "";
  }
}

/** One setting's control: a checkbox, a number within its limits, or a choice of radio buttons. */
function settingControl(row) {
  const input = (type) => {
    const el = document.createElement("input");
    el.type = type;
    el.dataset.setting = row.key;
    return el;
  };
  const off = document.createElement("small");
  off.dataset.settingOff = row.key;
  off.hidden = true;
  if (row.kind === "choice") {
    const group = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = `${row.label}: ${row.help}`;
    group.append(legend);
    for (const choice of row.choices) {
      const label = document.createElement("label");
      label.className = "check";
      const radio = input("radio");
      radio.name = `setting-${row.key}`;
      radio.value = choice.value;
      label.append(radio, ` ${choice.label}`);
      group.append(label);
    }
    group.append(off);
    return group;
  }
  const label = document.createElement("label");
  if (row.kind === "boolean") {
    label.className = "check";
    const words = document.createElement("span");
    words.append(`${row.label}: ${row.help} `, off);
    label.append(input("checkbox"), words);
  } else {
    const number = input("number");
    Object.assign(number, { id: `setting-${row.key}`, min: row.min, max: row.max, step: 1 });
    label.title = row.help;
    label.append(`${row.label} (${row.min} to ${row.max}) `, off, number);
  }
  return label;
}

function renderTraining(state) {
  const { training, model, engine } = state;
  $("train").disabled = training.running || engine.status !== "ready" || state.readOnly;
  $("stop").hidden = !training.running;
  const status = $("train-status");
  const last = training.history[training.history.length - 1];
  if (training.error) status.textContent = training.error;
  else if (training.running && training.validating)
    status.textContent = `Checking accuracy on photos each head has not seen… ${training.validating.fold} of ${training.validating.folds}`;
  else if (training.running) status.textContent = last ? `Training… step ${last.step}` : "Training…";
  else if (model && last)
    status.textContent =
      `Trained${training.stopped ? " (stopped early)" : ""} in ${training.seconds?.toFixed(1) ?? "?"} s` +
      (model.validation?.summary
        ? ` · accuracy on new photos: ${model.validation.summary}`
        : model.heldOut
          ? " by an older Fewshot: train again for honest, cross-validated figures"
          : " · add 2 photos or more to each class to estimate its accuracy");
  else if (model) status.textContent = "A trained model is loaded.";
  else status.textContent = "";
  status.classList.toggle("error", !!training.error);
  renderSettings(state);
  const figure = $("chart-figure");
  figure.hidden = training.history.length === 0 || last?.step == null;
  if (!figure.hidden) {
    drawChart($("chart"), training.history);
    $("chart-legend").textContent = LEGEND;
  }
}

function renderResults(state) {
  const { model } = state;
  const results = $("results");
  results.hidden = !model?.validation?.evaluation;
  if (results.hidden) return;
  const { validation, labels } = model;
  const heldOut = validation.evaluation;
  $("accuracy-summary").textContent = validation.summary
    ? `Accuracy: ${validation.summary}. Each photo was classified by a model trained without it.`
    : "";
  $("warnings").replaceChildren(...warnings(state).map(problemItem));

  const table = $("per-class");
  const head = row("th", ["Class", "Accuracy (recall)", "Likely range", "Precision", "Photos"]);
  const rows = heldOut.perClass.map((c, i) => {
    const range = validation.recallRanges?.[i];
    return row("td", [
      c.label,
      `${(c.recall * 100).toFixed(0)} %`,
      range ? `${(range[0] * 100).toFixed(0)}–${(range[1] * 100).toFixed(0)} %` : "",
      `${(c.precision * 100).toFixed(0)} %`,
      String(c.support),
    ]);
  });
  table.replaceChildren(head, ...rows);

  const matrix = $("confusion");
  const header = row("th", ["", ...labels]);
  // The corner holds no header (an empty <th> is a header of nothing to a screen reader).
  header.firstElementChild.replaceWith(document.createElement("td"));
  const body = heldOut.confusion.map((counts, actual) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = labels[actual];
    th.scope = "row";
    tr.append(th);
    const total = counts.reduce((a, b) => a + b, 0) || 1;
    counts.forEach((n, predicted) => {
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cell";
      button.dataset.actual = actual;
      button.dataset.predicted = predicted;
      button.textContent = String(n);
      button.setAttribute("aria-label", `${n} photos of ${labels[actual]} predicted as ${labels[predicted]}`);
      const share = n / total;
      button.style.setProperty("--share", share.toFixed(3));
      button.classList.toggle("diagonal", actual === predicted);
      button.classList.toggle("strong", share > (actual === predicted ? STRONG.diagonal : STRONG.other));
      button.classList.toggle("selected", state.inspect?.actual === actual && state.inspect?.predicted === predicted);
      td.append(button);
      tr.append(td);
    });
    return tr;
  });
  matrix.replaceChildren(header, ...body);

  const inspect = $("inspect");
  inspect.hidden = !state.inspect;
  if (!state.inspect) inspectUrlsFor([]);
  if (state.inspect) {
    const { actual, predicted } = state.inspect;
    const images = new Map(state.classes.flatMap((c) => c.photos.filter((p) => p.image).map((p) => [p.id, p.image])));
    const photos = (model.checkedPhotos || []).filter((p) => p.actual === actual && p.predicted === predicted && images.has(p.photoId));
    const title = document.createElement("p");
    title.textContent = `${photos.length} photo${photos.length === 1 ? "" : "s"} of “${labels[actual]}” predicted as “${labels[predicted]}” by a model trained without ${photos.length === 1 ? "it" : "them"}`;
    const shown = inspectUrlsFor(photos.slice(0, MAX_INSPECTED).map((p) => images.get(p.photoId)));
    const grid = document.createElement("div");
    grid.className = "thumbs";
    grid.append(
      ...photos.slice(0, MAX_INSPECTED).map((p) => {
        const img = document.createElement("img");
        img.src = shown.get(images.get(p.photoId));
        img.alt = "";
        img.className = "thumb-img";
        return img;
      }),
    );
    inspect.replaceChildren(title, grid);
  }
}

/** Above these shares a confusion-matrix cell's colour is dark enough for white numbers
 * (style.css, .cell.strong): the ink stops reading (4.5:1) when a diagonal cell's blue passes
 * an opacity of .72 (share .78) and when another cell's red passes .74 (share .87). */
const STRONG = { diagonal: 0.78, other: 0.87 };

/** The photos behind a confusion-matrix cell: at most this many shown. */
const MAX_INSPECTED = 120;
/** Object URLs of the inspected photos, by Blob: kept while shown, revoked after. */
let inspectUrls = new Map();
function inspectUrlsFor(blobs) {
  const next = new Map(blobs.map((b) => [b, inspectUrls.get(b) ?? URL.createObjectURL(b)]));
  for (const [b, url] of inspectUrls) if (!next.has(b)) URL.revokeObjectURL(url);
  inspectUrls = next;
  return next;
}

function row(cell, texts) {
  const tr = document.createElement("tr");
  tr.append(
    ...texts.map((t) => {
      const el = document.createElement(cell);
      el.textContent = t;
      if (cell === "th") el.scope = "col";
      return el;
    }),
  );
  return tr;
}

/** Plain warnings: classes that do not separate, photos that may be in the wrong class,
 * classes with few photos. */
export function warnings({ model, classes }) {
  const out = [];
  const validation = model?.validation;
  if (!validation?.evaluation) return out;
  const k = model.labels.length;
  const [, high] = validation.accuracyRange || [0, 1];
  if (high < 1 / k + 0.15 || validation.evaluation.accuracy < 1 / k + 0.1)
    out.push(
      `The classes hardly separate: accuracy is ${(validation.evaluation.accuracy * 100).toFixed(0)} %, close to guessing (${(100 / k).toFixed(0)} %). Add more, and more varied, photos, or make the classes more different.`,
    );
  const names = new Map(classes.flatMap((c) => c.photos.map((p, i) => [p.id, `photo ${i + 1} of “${c.name}”`])));
  const suspicious = (model.suspicious || []).filter((id) => names.has(id));
  if (suspicious.length)
    out.push(
      `Check ${suspicious.length === 1 ? "this photo" : "these photos"}: the other photos say ${suspicious.length === 1 ? "it looks" : "they look"} like another class (in the wrong class, or ambiguous?): ${suspicious
        .slice(0, 8)
        .map((id) => names.get(id))
        .join(", ")}${suspicious.length > 8 ? ", …" : ""}.`,
    );
  const duplicates = (model.duplicates || []).filter(([a, b]) => names.has(a) && names.has(b));
  if (duplicates.length)
    out.push(
      `Nearly the same photo twice (it counts double, or contradicts itself across classes): ${duplicates
        .slice(0, 5)
        .map(([a, b]) => `${names.get(a)} and ${names.get(b)}`)
        .join("; ")}${duplicates.length > 5 ? "; …" : ""}.`,
    );
  validation.evaluation.perClass.forEach((c, i) => {
    const range = validation.recallRanges?.[i];
    if (range && range[1] - range[0] > 0.5 && c.support < 10)
      out.push(`“${c.label}” needs more photos: with ${c.support}, its accuracy could be anywhere from ${(range[0] * 100).toFixed(0)} to ${(range[1] * 100).toFixed(0)} %.`);
  });
  for (const c of classes) {
    const n = c.photos.filter((p) => p.status === "ready").length;
    if (n < 10) out.push(`“${c.name}” has only ${n} photo${n === 1 ? "" : "s"}: 10 or more per class work better.`);
  }
  return out;
}

function renderPreview({ preview, model, webcam, problems, showHeat }) {
  const bars = $("bars");
  const verdict = $("verdict");
  const previewing = webcam.on && webcam.target === "preview";
  $("preview-webcam").textContent = previewing ? "Stop webcam" : "Webcam";
  $("preview-switch").hidden = !previewing || webcam.cameras.length < 2;
  $("preview-video").hidden = !previewing;
  const image = $("preview-image");
  image.hidden = previewing || !preview?.url;
  if (preview?.url && image.getAttribute("src") !== preview.url) image.src = preview.url;
  $("preview-hint").hidden = previewing || !!preview?.url;
  const problem = $("preview-problem");
  problem.hidden = !problems.preview?.length;
  problem.textContent = (problems.preview || []).join(" ");
  $("show-heat").checked = showHeat;
  if (!model || !preview?.predictions) drawHeat($("preview-heat"), null);
  if (!model) {
    verdict.textContent = "Train a model (or open one) to classify photos.";
    bars.replaceChildren();
    return;
  }
  const predictions = preview?.predictions;
  if (!predictions) {
    verdict.textContent = "";
    bars.replaceChildren();
    return;
  }
  const { kind, label, probability, nearLine } = verdictOf(preview);
  const top = predictions[0];
  const foreign = kind === "unfamiliar";
  const sure = kind === "confident";
  verdict.textContent = foreign
    ? nearLine
      ? `Probably none of these: this photo is only a little less like the photos the model learned from than they are like each other (closest: “${label}”, ${Math.round(probability * 100)} %)`
      : `None of these: this photo looks unlike every class (closest: “${label}”)`
    : sure
      ? `This looks like “${label}”`
      : "Not sure: no class is confident";
  verdict.classList.toggle("unsure", !sure);
  verdict.classList.toggle("foreign", foreign);
  drawHeat($("preview-heat"), showHeat && !foreign ? preview.heatmap : null);
  const byClass = [...predictions].sort((a, b) => a.class - b.class);
  bars.replaceChildren(
    ...byClass.map((p) => {
      const li = document.createElement("li");
      li.className = "bar" + (p === top && sure ? " best" : "");
      const label = document.createElement("span");
      label.className = "bar-label";
      label.textContent = p.label;
      const track = document.createElement("span");
      track.className = "bar-track";
      const fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.width = `${(p.probability * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = `${Math.round(p.probability * 100)} %`;
      li.append(label, track, value);
      return li;
    }),
  );
}

/** Where the model looked: the 7x7 heatmap, smoothed, in red over the square of the photo the
 * backbone saw (the centre square when cropping, the whole photo when padding), laid out as
 * the image or video is (object-fit: contain). */
function drawHeat(canvas, heatmap) {
  canvas.hidden = !heatmap;
  if (!heatmap) return;
  const { g, width, height } = fitCanvas(canvas, 1, 1);
  const scale = Math.min(width / heatmap.width, height / heatmap.height);
  const left = (width - heatmap.width * scale) / 2;
  const top = (height - heatmap.height * scale) / 2;
  const side = (heatmap.framing === "pad" ? Math.max : Math.min)(heatmap.width, heatmap.height) * scale;
  const x = left + (heatmap.width * scale - side) / 2;
  const y = top + (heatmap.height * scale - side) / 2;
  const n = Math.round(Math.sqrt(heatmap.values.length));
  const cells = new ImageData(n, n);
  heatmap.values.forEach((v, i) => cells.data.set([214, 40, 60, Math.round(170 * v * v)], i * 4));
  const small = new OffscreenCanvas(n, n);
  small.getContext("2d").putImageData(cells, 0, 0);
  g.save();
  g.beginPath();
  g.rect(left, top, heatmap.width * scale, heatmap.height * scale);
  g.clip();
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(small, x, y, side, side);
  g.restore();
}
