// The web app Fewshot exports ("Export web app"): a trained model that classifies photos and
// the webcam on any static server, offline, with nothing from elsewhere. In the export its
// page (app.html) is index.html at the root, beside the package (package/fewshot.js and the
// files it loads), the weights and model.fewshot. Label names are the model's: shown with
// textContent only.
import { load, verdict } from "./fewshot.js";

const $ = (id) => document.getElementById(id);
const status = $("status");
let model = null;

function show({ predictions, unfamiliar }) {
  const { kind, label, nearLine } = verdict({ predictions, unfamiliar });
  // "None of these" is the answer: the closest class is not presented as one (no name in
  // the verdict, bars greyed and said to be no answer), as the Fewshot page words it.
  const foreign = kind === "unfamiliar";
  $("verdict").textContent = foreign
    ? nearLine
      ? "Probably none of these: this photo is a little unlike the photos the model learned from"
      : "None of these: this photo looks unlike every class"
    : kind === "confident"
      ? `This looks like “${label}”`
      : "Not sure: no class is confident";
  $("verdict").dataset.kind = kind;
  $("bars-note").hidden = !foreign;
  $("bars").classList.toggle("secondary", foreign);
  $("bars").replaceChildren(
    ...model.labels.map((name) => {
      const p = predictions.find((x) => x.label === name)?.probability ?? 0;
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${name} ${Math.round(p * 100)} %`;
      const bar = document.createElement("meter");
      bar.value = p;
      bar.setAttribute("aria-label", name);
      li.append(text, bar);
      return li;
    }),
  );
}

/** No answer to show (an error, or the webcam starting). */
function clear(message) {
  $("verdict").textContent = message;
  delete $("verdict").dataset.kind;
  $("bars-note").hidden = true;
  $("bars").replaceChildren();
}

async function classifyFile(file) {
  if (!model || !file) return;
  stopWebcam();
  const photo = $("photo");
  URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  photo.hidden = false;
  $("hint").hidden = true;
  try {
    show(await model.classify(file));
  } catch (e) {
    clear(e.message);
  }
}

let stream = null;
async function startWebcam() {
  const video = $("video");
  stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  video.srcObject = stream;
  await video.play();
  video.hidden = false;
  $("photo").hidden = true;
  $("hint").hidden = true;
  while (stream) {
    try {
      show(await model.classify(video));
    } catch (e) {
      clear(e.message);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function stopWebcam() {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  $("video").hidden = true;
}

try {
  model = await load("model.fewshot", { onProgress: (f) => (status.textContent = `Loading… ${Math.round(f * 100)} %`) });
  $("title").textContent = model.labels.join(" · ");
  status.textContent = `Ready: ${model.labels.length} classes`;
  document.body.dataset.ready = "true";
} catch (e) {
  status.textContent = `Could not load the model: ${e.message}`;
}
// After the model (so that the service worker finds the files in the browser's HTTP cache
// instead of downloading them a second time).
keepOffline();

/** Offline: the app's own service worker (sw.js, made by the export from seam/offline-cache.js) keeps
 * every file of the app, so that it opens with no server; a newer export found on the server
 * waits, and is offered as a reload. body[data-offline="ready"] once every file is kept.
 * Without service workers (an old browser, plain http on another host) it works online. */
function keepOffline() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  let reloading = false;
  let waiting = null;
  navigator.serviceWorker.addEventListener("controllerchange", () => reloading && location.reload());
  $("update").addEventListener("click", () => {
    reloading = true;
    waiting?.postMessage("update");
  });
  navigator.serviceWorker
    .register("sw.js")
    .then((registration) => {
      const offer = () => {
        // The first install is not an update: nothing runs an older version.
        if (!registration.waiting || !navigator.serviceWorker.controller) return;
        waiting = registration.waiting;
        $("update").hidden = false;
      };
      offer();
      registration.addEventListener("updatefound", () => {
        const installing = registration.installing;
        installing?.addEventListener("statechange", () => installing.state === "installed" && offer());
      });
      return navigator.serviceWorker.ready;
    })
    .then(() => (document.body.dataset.offline = "ready"))
    .catch(() => {}); // offline use is a bonus: the app works online without it
}

$("file").addEventListener("change", (e) => {
  classifyFile(e.target.files[0]);
  e.target.value = "";
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => e.preventDefault());
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  classifyFile(e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => classifyFile([...e.clipboardData.files].find((f) => f.type.startsWith("image/"))));
$("webcam").addEventListener("click", () => {
  if (stream) return stopWebcam();
  startWebcam().catch((e) => {
    stopWebcam();
    clear(`No webcam: ${e.message}`);
  });
});
