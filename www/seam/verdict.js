// What a classification means for a person, the same on the page (draw.js) and in the package
// (fewshot.js, which exports it: the exported web app's app.js words it so too).

/** Below this probability no class is a confident answer ("not sure"). */
export const CONFIDENT = 0.5;

/** What a classification means for a person: { kind: "unfamiliar" (none of these: the photo
 * is unlike every photo the model learned from) | "confident" | "unsure" (between classes),
 * label and probability of the most likely class, nearLine: an "unfamiliar" only just over the
 * line, where a few photos of the kinds it learned fall too: "probably none of these" }. */
export function verdict({ predictions, unfamiliar }) {
  const [top] = predictions;
  const kind = unfamiliar?.unfamiliar ? "unfamiliar" : top.probability >= CONFIDENT ? "confident" : "unsure";
  return { kind, label: top.label, probability: top.probability, nearLine: kind === "unfamiliar" && !!unfamiliar.nearLine };
}
