// Everything a page needs to classify photos with a model exported from Fewshot.
import { load } from "./fewshot.js";

const output = document.querySelector("output");
const model = await load("model.fewshot");
output.textContent = `Ready: ${model.labels.join(", ")}`;

document.querySelector("input").addEventListener("change", async (event) => {
  const [best] = await model.predict(event.target.files[0]);
  output.textContent = `${best.label} (${Math.round(best.probability * 100)} %)`;
});
