// Project files and the model card under node: no browser. A round trip, a data set ZIP of
// folders, the old binary format, and damaged files refused with words, never a crash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { zipSync, strToU8 } from "../../www/vendor/fflate.js";
import { writeProject, readProject, folderName, LIMITS } from "../../www/page/projectfile.js";
import { modelCard } from "../../www/page/modelcard.js";
import { Kind } from "../../www/seam/protocol.js";
import { initSync, Project } from "../../www/pkg/fewshot.js";

// The engine's own check of a project's description (src/projectfile.rs), as the worker runs it.
initSync({ module: readFileSync(new URL("../../www/pkg/fewshot_bg.wasm", import.meta.url)) });
const check = async (json, files, model) => Project.checkProjectFile(json, files, model);
const read = (bytes, name) => readProject(bytes, name, check);
const twoViews = new Project();
twoViews.setSettings({ zoom: false });
const KEY = twoViews.viewsKey; // a photo and its mirror image: 2 x 1,280 floats

const JPEG = new Uint8Array(readFileSync(new URL("../e2e/fixtures/cmyk.jpg", import.meta.url)));
const PNG = new Uint8Array(readFileSync(new URL("../e2e/fixtures/transparent.png", import.meta.url)));
const floats = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + seed));

function sample() {
  return {
    classes: [
      { name: "ripe", photos: [{ id: "a", added: 1, bytes: JPEG, embeddings: floats(2560, 1), viewsKey: KEY }, { id: "b", added: 2, bytes: PNG, embeddings: null }] },
      { name: "un/ripe: <b>", photos: [{ id: "c", added: 3, bytes: JPEG, embeddings: floats(2560, 2), viewsKey: KEY }] },
    ],
    settings: { hiddenUnits: 16, zoom: false },
    model: null,
    backbone: { sha256: "ab".repeat(32) },
    card: "# card",
  };
}

test("a project ZIP reads back the same", async () => {
  const zip = await writeProject(sample());
  const back = await read(zip, "p.zip");
  assert.equal(back.kind, "project");
  assert.deepEqual(back.settings, { hiddenUnits: 16, framing: "crop", mirror: true, zoom: false }, "every setting, checked");
  assert.deepEqual(back.classes.map((c) => c.name), ["ripe", "un/ripe: <b>"]);
  assert.deepEqual(back.classes.map((c) => c.photos.map((p) => p.id)), [["a", "b"], ["c"]]);
  assert.deepEqual(new Uint8Array(await back.classes[0].photos[1].image.arrayBuffer()), PNG);
  assert.equal(back.classes[0].photos[1].image.type, "image/png");
  assert.deepEqual(back.classes[1].photos[0].embeddings, floats(2560, 2));
  assert.equal(back.classes[0].photos[1].embeddings, null);
  assert.equal(back.classes[1].photos[0].viewsKey, KEY);
  assert.equal(back.model, null);
  assert.equal(back.backbone.sha256, "ab".repeat(32));
});

test("a project whose model is not one, or whose settings are out of range, is refused by name", async () => {
  const notAModel = await writeProject({ ...sample(), model: { bytes: new Uint8Array([1, 2, 3, 4]), labels: ["ripe", "un/ripe: <b>"] } });
  await assert.rejects(() => read(notAModel, "m.zip"), { kind: Kind.BadInput, message: /^m\.zip cannot be opened: its project\.json is damaged \(model: cannot read this model file/ });
  const sideways = await writeProject({ ...sample(), settings: { framing: "sideways" } });
  await assert.rejects(() => read(sideways, "s.zip"), { kind: Kind.BadInput, message: /settings\.framing: unknown variant `sideways`/ });
  const empty = await writeProject({ ...sample(), classes: [] });
  await assert.rejects(() => read(empty, "e.zip"), { kind: Kind.BadInput, message: /it has no classes/ });
});

test("class names become safe, distinct folder names", () => {
  const taken = new Set();
  assert.equal(folderName("un/ripe: <b>", taken), "un_ripe_ _b_");
  assert.equal(folderName("..", taken), "class");
  assert.equal(folderName("Class", taken), "Class (2)");
});

test("a ZIP of one folder per class opens as classes to embed", async () => {
  const zip = zipSync({
    "data/hat/1.jpg": JPEG,
    "data/hat/2.png": PNG,
    "data/shoes/x.jpg": JPEG,
    "data/readme.txt": strToU8("hello"),
    "data/shoes/evil.svg": strToU8('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    "__MACOSX/data/hat/._1.jpg": JPEG,
  });
  const back = await read(zip, "data.zip");
  assert.equal(back.kind, "folders");
  assert.deepEqual(back.classes.map((c) => [c.name, c.photos.length]), [["hat", 2], ["shoes", 1]]);
  assert.ok(back.classes[0].photos.every((p) => p.source && !p.image && !p.embeddings));
  assert.deepEqual(back.skipped.sort(), ["data/readme.txt", "data/shoes/evil.svg"]);
});

test("the binary project file of Fewshot 0.1 still opens", async () => {
  const parts = [JPEG, new Uint8Array(floats(1280, 3).buffer), new Uint8Array([9, 9])];
  const ranges = [];
  parts.reduce((at, p) => (ranges.push([at, p.byteLength]), at + p.byteLength), 0);
  const manifest = strToU8(JSON.stringify({
    format: "fewshot-project",
    version: 1,
    settings: { mirror: false },
    classes: [{ name: "hat", photos: [{ id: "p1", type: "text/html", image: ranges[0], embeddings: ranges[1], viewsKey: "v" }] }],
  }));
  const header = new Uint8Array(13);
  header.set(strToU8("FEWSHOTP"));
  header[8] = 1;
  new DataView(header.buffer).setUint32(9, manifest.length, true);
  const file = new Uint8Array(await new Blob([header, manifest, ...parts]).arrayBuffer());
  const back = await read(file, "old.fewshot-project");
  assert.equal(back.kind, "binary");
  const photo = back.classes[0].photos[0];
  assert.equal(photo.image.type, "image/jpeg", "the type comes from the bytes, not the file");
  assert.deepEqual(photo.embeddings, floats(1280, 3));
  assert.equal(back.model, null);
  assert.deepEqual(back.settings, { hiddenUnits: 0, framing: "crop", mirror: false, zoom: true });
  await assert.rejects(() => read(file.subarray(0, file.length - 3000), "cut"), { kind: Kind.BadInput, message: /truncated/ });
});

test("damaged and foreign files are refused with words, never a crash", async () => {
  const good = await writeProject(sample());
  let refused = 0;
  let opened = 0;
  // A few hundred mutants: flipped bytes, cuts, and zeroed runs.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 300; i++) {
    const mutant = good.slice(0, i % 3 === 0 ? Math.floor(random() * good.length) : good.length);
    const flips = 1 + Math.floor(random() * 8);
    for (let f = 0; f < flips && mutant.length; f++) mutant[Math.floor(random() * mutant.length)] = Math.floor(random() * 256);
    try {
      await read(mutant, "m.zip");
      opened++;
    } catch (e) {
      assert.equal(e.kind, Kind.BadInput, `${e.stack}`);
      assert.match(e.message, /^m\.zip /);
      refused++;
    }
  }
  assert.equal(refused + opened, 300);
  // A mutant that still opens changed no byte any file is made of (a date, padding).
  assert.ok(refused > 250, `refused ${refused} of 300`);
  console.log(`# project ZIP: 300 mutants, ${refused} refused as bad input, ${opened} opened unchanged in content, 0 crashes`);
  for (const bytes of [new Uint8Array(0), strToU8("<html>"), JPEG]) {
    await assert.rejects(() => read(bytes, "x"), { kind: Kind.BadInput, message: /not a Fewshot project/ });
  }
});

test("a project ZIP with a damaged list of files is refused as a damaged project, not opened as a data set", async () => {
  const zip = await writeProject(sample());
  const name = strToU8("project.json");
  // The last time the name is written: the central directory's entry for it.
  let at = -1;
  for (let i = zip.length - name.length; i >= 0 && at < 0; i--) if (name.every((v, k) => zip[i + k] === v)) at = i;
  const damaged = zip.slice();
  damaged[at + 3] ^= 0x01;
  await assert.rejects(() => read(damaged, "d.zip"), { kind: Kind.BadInput, message: /^d\.zip is a damaged project/ });
});

test("a ZIP declaring more than the limits is refused before it is unpacked", async () => {
  const files = {};
  for (let i = 0; i <= LIMITS.entries; i++) files[`c/${i}.txt`] = new Uint8Array(0);
  await assert.rejects(() => read(zipSync(files), "many.zip"), { kind: Kind.BadInput, message: /more than 50,100 files/ });
});

test("the model card says what it knows, and what it cannot", () => {
  const card = modelCard({
    classes: [{ name: "ripe", photos: 12 }, { name: "un|ripe", photos: 8 }],
    model: {
      labels: ["ripe", "un|ripe"],
      validation: { summary: "about 90 % (likely 70 to 97 %), cross-validated on 20 photos", evaluation: { perClass: [{ recall: 0.9, precision: 0.85 }, { recall: 0.875, precision: 0.9 }] }, recallRanges: [[0.6, 0.98], [0.5, 0.98]] },
    },
    settings: [{ name: "Mirror", value: "on" }],
    sha256: "cd".repeat(32),
    date: new Date("2026-11-28T12:00:00Z"),
  });
  assert.match(card, /^# Model card: ripe, un\\\|ripe/);
  assert.match(card, /on 2026-11-28, on 20 photos/);
  assert.match(card, /\| ripe \| 12 \| 90 % \| 60 % to 98 % \| 85 % \|/);
  assert.match(card, /about 90 % \(likely 70 to 97 %\), cross-validated on 20 photos/);
  assert.match(card, /Apache-2\.0/);
  assert.match(card, new RegExp("cd".repeat(32)));
  assert.match(card, /Not for decisions about people/);
  assert.match(card, /- Mirror: on/);
  const untested = modelCard({ classes: [{ name: "a", photos: 1 }, { name: "b", photos: 1 }], model: { labels: ["a", "b"] }, settings: [], sha256: null });
  assert.match(untested, /was not estimated/);
});
