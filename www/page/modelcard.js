// The model card: what a trained model is, how well it does, and what it cannot know, in plain
// words (Markdown). Shown in the page, and put in every project ZIP and web-app export. A pure
// function of plain data: tested under node (tests/js).

/** The backbone every Fewshot model stands on (its sha256 is the engine's to know). */
export const BACKBONE = {
  name: "MobileNetV2 1.0 224, quantized (8-bit)",
  file: "mobilenet_v2_1.0_224_quant.tflite",
  origin: "Google's MobileNetV2 (Sandler et al., 2018), trained on ImageNet (ILSVRC-2012) and quantized by Google for TensorFlow Lite",
  licence: "Apache-2.0",
};

const percent = (x) => `${Math.round(x * 100)} %`;

/**
 * The card as Markdown. `classes`: [{ name, photos: count }] in the model's order; `model`: the
 * page's model ({ labels, validation: { summary, evaluation, recallRanges, folds, photos } });
 * `settings`: [{ name, value }] as people read them; `sha256`: the backbone's; `date`: a Date.
 */
export function modelCard({ classes, model, settings, sha256, date = new Date() }) {
  const labels = model?.labels ?? classes.map((c) => c.name);
  const counts = new Map(classes.map((c) => [c.name, c.photos]));
  const total = labels.reduce((n, l) => n + (counts.get(l) ?? 0), 0);
  const validation = model?.validation;
  const perClass = validation?.evaluation?.perClass ?? [];
  const cell = (text) => String(text).replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");
  const lines = [
    `# Model card: ${labels.map(cell).join(", ")}`,
    "",
    `Trained with Fewshot on ${date.toISOString().slice(0, 10)}, on ${total} photos, entirely on the device of the person who made it: the photos never left it.`,
    "",
    "## What it does",
    "",
    `Given a photo, it says which of these ${labels.length} classes it looks most like, with a probability for each. ` +
      "It says \"none of these\" when a photo is unlike every photo it learned from, and \"not sure\" when a photo is between classes.",
    "",
    "## Classes and how well it tells them apart",
    "",
    "| Class | Photos | Accuracy (recall) | Likely range | Precision |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...labels.map((label, i) => {
      const figures = perClass[i];
      const range = validation?.recallRanges?.[i];
      return `| ${cell(label)} | ${counts.get(label) ?? "?"} | ${figures ? percent(figures.recall) : "–"} | ${range ? `${percent(range[0])} to ${percent(range[1])}` : "–"} | ${figures ? percent(figures.precision) : "–"} |`;
    }),
    "",
    validation?.summary
      ? `Overall accuracy: ${validation.summary}. Every figure comes from cross-validation: each photo was classified by a model trained without it. ` +
        "The range is where the true accuracy on photos like these most likely lies (95 %); with few photos it is wide."
      : "Its accuracy was not estimated: there were too few photos to set some aside. Add more photos to each class and train again.",
    "",
    "## How it was made",
    "",
    `- Backbone: ${BACKBONE.name} (\`${BACKBONE.file}\`), ${BACKBONE.origin}. Licence: ${BACKBONE.licence}.`,
    `- Backbone sha256: \`${sha256 ?? "unknown"}\``,
    "- The backbone turns each photo into 1,280 numbers (an embedding). Only a small classifier on top of those numbers learned these classes, from these photos.",
    ...settings.map(({ name, value }) => `- ${name}: ${value}`),
    "",
    "## What ImageNet pre-training means for your photos",
    "",
    "The backbone learned to see from about 1.2 million everyday photos of 1,000 kinds of things (animals, objects, food, vehicles, scenes). " +
      "It notices shapes, textures, colours and objects the way such photos show them. It works best on ordinary photos; " +
      "it may do poorly on what ImageNet holds little of (medical or microscope images, satellite views, drawings, text, tiny details), " +
      "and it carries ImageNet's blind spots and biases.",
    "",
    "## Intended use and limits",
    "",
    "- For sorting photos like the ones it learned from, where a wrong answer is cheap and a person can check it.",
    "- Not for decisions about people (who someone is, their health, their worth), nor for safety, medical, legal or financial decisions.",
    "- It knows only these classes. A photo of something else may still be given one of them, even when \"none of these\" catches most.",
    "- The accuracy above was measured on the same kind of photos it learned from. Other cameras, light, backgrounds or angles can lower it: try it on new photos before relying on it.",
    "",
  ];
  return lines.join("\n");
}
