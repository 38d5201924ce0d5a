// Everything a page needs to classify photos with a model exported from Fewshot.
import init, { Fewshot, Classifier } from "./pkg/fewshot.js";

const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
await init();
const fewshot = await Fewshot.create(await bytes("weights/mobilenet_v2_1.0_224_quant.tflite"), "auto");
const classifier = Classifier.load(await bytes("model.fewshot"));
const output = document.querySelector("output");
output.textContent = `Ready: ${classifier.labels.join(", ")}`;

document.querySelector("input").addEventListener("change", async (event) => {
  const bitmap = await createImageBitmap(event.target.files[0]);
  const context = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const { data, width, height } = context.getImageData(0, 0, bitmap.width, bitmap.height);
  // One embedding per view of the photo (the photo, and its mirror image if the model was
  // trained with mirroring), one after the other.
  const views = classifier.views;
  const embedding = new Float32Array(views.length * 1280);
  for (const [i, view] of views.entries()) embedding.set(await fewshot.embed(data, width, height, view), i * 1280);
  const [best] = classifier.predict(embedding);
  output.textContent = `${best.label} (${Math.round(best.probability * 100)} %)`;
});
