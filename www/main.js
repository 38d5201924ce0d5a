// Minimal page: loads the engine in its worker and labels a photo with ImageNet classes.
import * as engine from "./engine.js";

const status = document.getElementById("status");
const device = new URLSearchParams(location.search).get("device") || "auto";

const ready = engine
  .load({ device, onProgress: (f) => (status.textContent = `Downloading the model… ${Math.round(f * 100)} %`) })
  .then((info) => {
    status.textContent = info.device === "webgpu" ? "Ready on WebGPU" : `Ready on CPU — ${info.note}`;
    document.body.dataset.ready = info.device;
    return info;
  })
  .catch((e) => {
    status.textContent = `Could not start: ${e.message}`;
    document.body.dataset.ready = "error";
  });

document.getElementById("photo").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  await ready;
  const list = document.getElementById("top5");
  list.replaceChildren();
  try {
    const started = performance.now();
    const top5 = await engine.imagenet(file);
    status.textContent = `Labelled in ${Math.round(performance.now() - started)} ms`;
    for (const p of top5) {
      const item = document.createElement("li");
      item.textContent = `${p.label} ${(p.probability * 100).toFixed(1)} %`;
      list.append(item);
    }
  } catch (e) {
    status.textContent = e.message;
  }
});
