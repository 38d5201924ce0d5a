// The page's events, turned into plain data: bind(actions) wires every control to a call of
// actions.js with ids, names, files and numbers, never an event or an element. Reads the DOM;
// writes nothing to it but a drop zone's highlight and a file input's reset (draw.js writes
// the rest).
import * as photos from "./photos.js";

const $ = (id) => document.getElementById(id);
const classIdOf = (el) => el?.closest?.("[data-class-id]")?.dataset.classId ?? null;
const photoIdOf = (el) => el.closest(".thumb")?.dataset.photoId ?? null;
const pressed = (e) => e.key === " " || e.key === "Enter";

export function bind(a) {
  $("add-class").addEventListener("click", () => a.addClass());

  const list = $("class-list");
  list.addEventListener("input", (e) => e.target.matches(".class-name") && a.renameClass(classIdOf(e.target), e.target.value));
  list.addEventListener("click", (e) => {
    const id = classIdOf(e.target);
    if (e.target.matches(".delete-class")) a.deleteClass(id, { confirm: (question) => confirm(question) });
    else if (e.target.matches(".remove")) a.removePhoto(id, photoIdOf(e.target));
    else if (e.target.matches(".webcam")) a.toggleWebcam(id);
    else if (e.target.matches(".switch-camera")) a.switchCamera();
  });
  list.addEventListener("change", (e) => {
    const id = classIdOf(e.target);
    if (e.target.matches(".file-input")) a.addFiles(id, [...e.target.files].map((file) => ({ file, folder: null })));
    else if (e.target.matches(".folder-input")) a.addFiles(id, photos.pickedFolderFiles(e.target.files));
    else if (e.target.matches(".move") && e.target.value) a.movePhoto(id, photoIdOf(e.target), e.target.value);
    if (e.target.type === "file" || e.target.matches(".move")) e.target.value = "";
  });
  // The capture button adds webcam frames while it is held.
  const capture = (e, on) => e.target.matches(".capture") && (on ? a.startCapture(classIdOf(e.target)) : a.stopCapture());
  list.addEventListener("pointerdown", (e) => capture(e, true));
  list.addEventListener("pointerup", (e) => capture(e, false));
  list.addEventListener("pointerleave", () => a.stopCapture(), true);
  list.addEventListener("keydown", (e) => pressed(e) && !e.repeat && capture(e, true));
  list.addEventListener("keyup", (e) => pressed(e) && capture(e, false));

  // Drops: on a class card (files, folders), or anywhere on the class list for folders.
  list.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.target.closest(".drop")?.classList.add("over");
  });
  list.addEventListener("dragleave", (e) => e.target.closest(".drop")?.classList.remove("over"));
  list.addEventListener("drop", async (e) => {
    e.preventDefault();
    e.target.closest(".drop")?.classList.remove("over");
    a.addFiles(classIdOf(e.target), await photos.droppedFiles(e.dataTransfer));
  });

  $("show-heat").addEventListener("change", (e) => a.showHeat(e.target.checked));
  const preview = $("preview-drop");
  preview.addEventListener("dragover", (e) => e.preventDefault());
  preview.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files[0]) a.classify(e.dataTransfer.files[0]);
  });
  $("preview-file").addEventListener("change", (e) => {
    if (e.target.files[0]) a.classify(e.target.files[0]);
    e.target.value = "";
  });
  $("preview-webcam").addEventListener("click", () => a.toggleWebcam("preview"));
  $("preview-switch").addEventListener("click", () => a.switchCamera());

  // Paste: into the class whose card has focus, else as the actions decide.
  document.addEventListener("paste", (e) => {
    const files = photos.pastedFiles(e);
    if (files.length) a.paste(files, classIdOf(document.activeElement));
  });

  $("train").addEventListener("click", () => a.train());
  $("stop").addEventListener("click", () => a.stop());
  // Every setting's control (draw.js builds them from the engine's schema) names its setting.
  $("setting-controls").addEventListener("change", (e) => {
    const input = e.target.closest("[data-setting]");
    if (!input) return;
    const value = input.type === "checkbox" ? input.checked : input.type === "number" ? Number(input.value) : input.value;
    a.changeSettings({ [input.dataset.setting]: value });
  });
  $("reset-settings").addEventListener("click", () => a.resetSettings());

  $("confusion").addEventListener("click", (e) => {
    const cell = e.target.closest(".cell");
    if (cell) a.inspect(Number(cell.dataset.actual), Number(cell.dataset.predicted));
  });

  $("save-project").addEventListener("click", () => a.saveProject());
  $("open-project").addEventListener("change", (e) => {
    if (e.target.files[0]) a.openProject(e.target.files[0]);
    e.target.value = "";
  });
  $("export-model").addEventListener("click", () => a.exportModel());
  $("export-webapp").addEventListener("click", () => a.exportWebApp());
  $("export-tflite").addEventListener("click", () => a.exportTflite());
  $("model-card").addEventListener("click", () => a.showModelCard(true));
  $("card-close").addEventListener("click", () => a.showModelCard(false));
  $("card-dialog").addEventListener("close", () => a.showModelCard(false));
  $("card-download").addEventListener("click", () => a.downloadModelCard());
  $("install").addEventListener("click", () => a.install());
  $("update").addEventListener("click", () => a.applyUpdate());
  $("new-project").addEventListener("click", () => a.newProject());
  $("project-select").addEventListener("change", (e) => a.openKeptProject(e.target.value));
  $("rename-project").addEventListener("click", () => a.renameProject(prompt("A new name for this project:", $("project-select").selectedOptions[0]?.textContent ?? "")));
  $("duplicate-project").addEventListener("click", () => a.duplicateProject());
  $("delete-project").addEventListener("click", () => a.deleteProject({ confirm: (question) => confirm(question) }));

  // Labels act as buttons for their hidden file inputs: make them work from the keyboard.
  document.addEventListener("keydown", (e) => {
    if (pressed(e) && e.target.matches("label.button")) {
      e.preventDefault();
      e.target.querySelector("input")?.click();
    }
  });
}
