// The package for web developers (www/package/fewshot.js) in a real page: load a model, predict from
// every input kind it takes, and agree with the engine's own answer; errors arrive with their
// kind. The model is trained in the same browser through the wasm API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { startServer, launch, echoConsole, SHARED } from "./browser.mjs";

const { origin } = await startServer({ "/shared/": SHARED });
const url = (split, label, i) => {
  const dir = join(SHARED, "datasets/clothing-small", split, label);
  return `/shared/datasets/clothing-small/${split}/${label}/${readdirSync(dir).sort()[i]}`;
};

test("the package predicts from every input kind as the engine does, and errors keep their kind", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  const page = await context.newPage();
  echoConsole(page, "package");
  await page.goto(`${origin}/package/example.html`); // any page of the origin: its CSP applies
  const train = ["hat", "shoes"].flatMap((label, c) => [0, 1, 2].map((i) => [url("train", label, i), label, c]));
  const result = await page.evaluate(
    async ({ train, probe }) => {
      const pixels = async (src) => {
        const bitmap = await createImageBitmap(src instanceof Blob ? src : await (await fetch(src)).blob());
        const g = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d");
        g.drawImage(bitmap, 0, 0);
        return g.getImageData(0, 0, bitmap.width, bitmap.height);
      };
      // A model trained through the wasm API, and the engine's own answer for the probe.
      const pkg = await import("/pkg/fewshot.js");
      await pkg.default();
      const weights = new Uint8Array(await (await fetch("/weights/mobilenet_v2_1.0_224_quant.tflite")).arrayBuffer());
      const backbone = await pkg.Backbone.create(weights, "cpu");
      const project = new pkg.Project();
      project.setClasses(["hat", "shoes"].map((name, c) => ({ id: name, name, photos: train.flatMap((t, i) => (t[2] === c ? [`p${i}`] : [])) })));
      for (const [i, [src]] of train.entries()) {
        const { data, width, height } = await pixels(src);
        await project.addPhoto(backbone, `p${i}`, data, width, height);
      }
      const { model } = await project.learn(backbone, null);
      // The probe as a lossless PNG small enough that nothing rescales it on the way in.
      const photo = await createImageBitmap(await (await fetch(probe)).blob());
      const small = new OffscreenCanvas(320, Math.round((320 * photo.height) / photo.width));
      small.getContext("2d").drawImage(photo, 0, 0, small.width, small.height);
      const blob = await small.convertToBlob({ type: "image/png" });
      const probeData = await pixels(blob);
      const engine = (await project.classify(backbone, probeData.data, probeData.width, probeData.height)).predictions;

      // The package, from each input kind (the weights are the site's: not beside this page, in
      // package/, but one folder up, as example.js says).
      const { load, FewshotError } = await import("/package/fewshot.js");
      const cpu = { device: "cpu", weights: "/weights/mobilenet_v2_1.0_224_quant.tflite" };
      const m = await load(model, cpu);
      const img = new Image();
      img.src = URL.createObjectURL(blob);
      const canvas = document.createElement("canvas");
      [canvas.width, canvas.height] = [probeData.width, probeData.height];
      canvas.getContext("2d").putImageData(probeData, 0, 0);
      const video = document.createElement("video");
      video.muted = true;
      video.srcObject = canvas.captureStream();
      await video.play();
      await new Promise((r) => (video.readyState >= 2 ? r() : video.addEventListener("loadeddata", r, { once: true })));
      const inputs = { img, canvas, video, imageBitmap: await createImageBitmap(blob), imageData: probeData, blob };
      const got = {};
      for (const [kind, input] of Object.entries(inputs)) got[kind] = await m.predict(input);

      // Errors, each with its kind.
      const kindOf = (p) => p.then(() => "resolved", (e) => `${e instanceof FewshotError ? "" : "not a FewshotError: "}${e.kind}: ${e.message}`);
      const errors = {
        svg: await kindOf(m.predict(new Blob(["<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"], { type: "image/png" }))),
        tiny: await kindOf(m.predict(new ImageData(4, 4))),
        notAModel: await kindOf(load(new Uint8Array(100).fill(7), cpu)),
        damagedModel: await kindOf(load(model.map((b, i) => (i === model.length - 5 ? b ^ 1 : b)), cpu)),
        noWeights: await kindOf(load(model, { weights: "/weights/missing.tflite", device: "cpu" })),
      };
      const pending = kindOf(m.predict(blob));
      await new Promise((r) => setTimeout(r, 20)); // the request is in the worker
      m.dispose();
      errors.inFlight = await pending;
      errors.disposed = await kindOf(m.predict(blob));
      return { labels: m.labels, engine, got, errors };
    },
    { train, probe: url("test", "shoes", 0) },
  );
  assert.deepEqual(result.labels, ["hat", "shoes"]);
  assert.equal(result.engine[0].label, "shoes");
  for (const [kind, predictions] of Object.entries(result.got)) {
    assert.deepEqual(predictions.map((p) => p.label), result.engine.map((p) => p.label), kind);
    for (const [i, p] of predictions.entries()) {
      // The same pixels reach the engine from every kind (a video frame goes through a codec).
      const tolerance = kind === "video" ? 0.05 : 1e-4;
      assert.ok(Math.abs(p.probability - result.engine[i].probability) <= tolerance, `${kind}: ${p.probability} vs ${result.engine[i].probability}`);
      assert.deepEqual(Object.keys(p).sort(), ["label", "probability"]);
    }
  }
  const e = result.errors;
  assert.match(e.svg, /^bad-input: not an image/);
  assert.match(e.tiny, /^bad-input: the image is only 4x4 pixels/);
  assert.match(e.notAModel, /^bad-input: cannot read this model file/);
  assert.match(e.damagedModel, /^bad-input: cannot read this model file/);
  assert.match(e.noWeights, /^storage: could not download the model weights \(HTTP 404\)/);
  assert.match(e.inFlight, /^internal: the engine was restarted/);
  assert.match(e.disposed, /^bad-input: this model was disposed/);
  console.log(`# package: ${Object.keys(result.got).join(", ")} agree with the engine (${result.engine.map((p) => `${p.label} ${p.probability.toFixed(4)}`).join(", ")})`);
  await context.close();
});
