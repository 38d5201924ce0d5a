// Everything a page needs to classify photos with a model exported from Fewshot.
import { load } from "./fewshot.js";

const output = document.querySelector("output");
// The weights are beside the page by default; on Fewshot's own site, one folder up.
const model = await load("model.fewshot", { weights: "../weights/mobilenet_v2_1.0_224_quant.tflite" });
output.textContent = `Ready: ${model.labels.join(", ")}`;

document.querySelector("input").addEventListener("change", async (event) => {
  const [best] = await model.predict(event.target.files[0]);
  output.textContent = `${best.label} (${Math.round(best.probability * 100)} %)`;
});
