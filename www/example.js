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
  const [best] = classifier.predict(await fewshot.embed(data, width, height, classifier.preprocess));
  output.textContent = `${best.label} (${Math.round(best.probability * 100)} %)`;
});
