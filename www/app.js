// The web app Fewshot exports ("Export web app"): a trained model that classifies photos and
// the webcam on any static server, offline, with nothing from elsewhere. In the export this
// page is index.html, beside the package (fewshot.js and its files), the weights and
// model.fewshot. Label names are the model's: shown with textContent only.
import { load, verdict } from "./fewshot.js";

const $ = (id) => document.getElementById(id);
const status = $("status");
let model = null;

function show({ predictions, unfamiliar }) {
  const { kind, label } = verdict({ predictions, unfamiliar });
  $("verdict").textContent =
    kind === "unfamiliar" ? `None of these (closest: “${label}”)` : kind === "confident" ? `This looks like “${label}”` : "Not sure";
  $("bars").replaceChildren(
    ...model.labels.map((name) => {
      const p = predictions.find((x) => x.label === name)?.probability ?? 0;
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${name} ${Math.round(p * 100)} %`;
      const bar = document.createElement("meter");
      bar.value = p;
      li.append(text, bar);
      return li;
    }),
  );
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
    $("verdict").textContent = e.message;
    $("bars").replaceChildren();
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
      $("verdict").textContent = e.message;
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
    $("verdict").textContent = `No webcam: ${e.message}`;
  });
});
