// A damaged project can cost nothing, in Debian's headless Chromium. project.json mutated field
// by field (null, a wrong type, an unknown choice, absurd numbers, missing, extra) and opened:
// each is refused (and nothing is written) or opened as a new project beside the first; after
// a reload the page works, and the first project is whole. Then what the page keeps in
// IndexedDB is damaged the same ways: the page still starts, every photo is kept, and what
// could not be used is set aside and said.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync, zipSync, strFromU8, strToU8 } from "../../www/vendor/fflate.js";
import { startServer, launch, tempDir, screenshot } from "./browser.mjs";
import { photosOf, pageOpener, card, settled, teach, counts as counts_, trainAndWait, storedRecords, openProjectDatabase } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);

/** Each mutation of project.json: a name, and what it does to the parsed JSON. */
const MUTATIONS = [
  ["settings.framing unknown", (p) => (p.settings.framing = "sideways")],
  ["settings null", (p) => (p.settings = null)],
  ["settings a list", (p) => (p.settings = [1, 2])],
  ["settings.hiddenUnits absurd", (p) => (p.settings.hiddenUnits = 1e12)],
  ["settings.mirror a text", (p) => (p.settings.mirror = "yes")],
  ["settings extra", (p) => (p.settings.sharpen = true)],
  ["classes null", (p) => (p.classes = null)],
  ["classes empty, model kept", (p) => (p.classes = [])],
  ["classes missing", (p) => delete p.classes],
  ["class name null", (p) => (p.classes[0].name = null)],
  ["class names the same", (p) => (p.classes[1].name = p.classes[0].name.toUpperCase())],
  ["photos a text", (p) => (p.classes[0].photos = "many")],
  ["photo file null", (p) => (p.classes[0].photos[0].file = null)],
  ["photo file elsewhere", (p) => (p.classes[0].photos[0].file = "../../etc/passwd")],
  ["photo added a text", (p) => (p.classes[0].photos[0].added = "yesterday")],
  ["photo id a number", (p) => (p.classes[0].photos[0].id = 42)],
  ["photo extra", (p) => (p.classes[0].photos[0].colour = "red")],
  ["embeddings past the end", (p) => (p.classes[0].photos[0].embeddings.at = 1e15)],
  ["embeddings negative", (p) => (p.classes[0].photos[0].embeddings.length = -5)],
  ["embeddings viewsKey unknown", (p) => (p.classes[0].photos[0].embeddings.viewsKey = "sideways")],
  ["model labels null", (p) => (p.model.labels = null)],
  ["model labels others", (p) => (p.model.labels = ["x", "y"])],
  ["model file missing", (p) => delete p.model.file],
  ["model a text", (p) => (p.model = "trained")],
  ["model checked photo of class 99", (p) => (p.model.checkedPhotos[0].actual = 99)],
  ["model history a text", (p) => (p.model.history = "long")],
  ["model seconds negative", (p) => (p.model.seconds = -1)],
  ["model validation forged", (p) => (p.model.validation = { summary: "about 100 %" })],
  ["checksums a list", (p) => (p.checksums = [1])],
  ["backbone sha256 null", (p) => (p.backbone.sha256 = null)],
  ["version absurd", (p) => (p.version = 1e9)],
  ["format missing", (p) => delete p.format],
  ["extra top-level field", (p) => (p.surprise = { deep: [1, 2, 3] })],
];

const usable = async (page) => {
  await page.waitForFunction(() => ["cpu", "webgpu", "error"].includes(document.body.dataset.engine), null, { timeout: 120_000 });
  return {
    engine: await page.getAttribute("body", "data-engine"),
    cards: await page.locator(".class-card").count(),
    projects: await page.$$eval("#project-select option", (os) => os.map((o) => o.textContent)),
  };
};

const chosen = (page) => page.$eval("#project-select", (s) => s.selectedOptions[0]?.textContent);

test("a project.json damaged field by field: refused or opened beside, never costing the first", { timeout: 900_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  const errors = [];
  try {
    const page = await openPage(context, "?device=cpu");
    page.on("pageerror", (e) => errors.push(e.message));
    assert.deepEqual(await teach(page, { hat: 3, shoes: 3 }), [3, 3]);
    await trainAndWait(page);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#save-project")]);
    const dir = tempDir("mutations");
    const good = join(dir, "good.zip");
    await download.saveAs(good);
    const files = unzipSync(new Uint8Array(readFileSync(good)));
    const original = JSON.parse(strFromU8(files["project.json"]));
    const whole = async () => {
      assert.equal(await chosen(page), "My project");
      assert.deepEqual(await settled(page, [3, 3]), [3, 3], "the first project's photos");
      assert.equal(await page.isDisabled("#export-model"), false, "the first project's model");
    };

    const verdicts = { refused: [], opened: [] };
    for (const [name, mutate] of MUTATIONS) {
      const manifest = structuredClone(original);
      mutate(manifest);
      const path = join(dir, `${name.replace(/\W+/g, "-")}.zip`);
      writeFileSync(path, zipSync({ ...files, "project.json": strToU8(JSON.stringify(manifest)) }));
      const before = (await usable(page)).projects.length;
      await page.evaluate(() => (document.querySelector("#notice").textContent = ""));
      await page.setInputFiles("#open-project", path);
      // Refused: a notice, nothing written. Opened: the page reloads into a new project.
      await page.waitForFunction(
        (before) => /Could not open/.test(document.querySelector("#notice")?.textContent ?? "") || document.querySelectorAll("#project-select option").length > before,
        before,
        { timeout: 60_000 },
      );
      const notice = await page.textContent("#notice");
      if (/Could not open/.test(notice)) {
        assert.match(notice, /Your current project is unchanged\.$/, name);
        verdicts.refused.push(name);
        await page.reload();
        const after = await usable(page);
        assert.equal(after.engine, "cpu", `${name}: the page works after a reload (${notice})`);
        assert.equal(after.projects.length, before, `${name}: a refused file adds no project`);
        await whole();
      } else {
        verdicts.opened.push(name);
        await page.reload();
        const opened = await usable(page);
        assert.equal(opened.engine, "cpu", `${name}: the opened project works after a reload`);
        assert.ok(opened.cards >= 1, `${name}: its classes show`);
        // Back to the first project: whole.
        await Promise.all([page.waitForEvent("load"), page.selectOption("#project-select", { label: "My project" })]);
        await usable(page);
        await whole();
      }
    }
    await screenshot(page, "mutations-after");
    assert.deepEqual(errors, [], "page errors");
    console.log(`# project.json mutated ${MUTATIONS.length} ways: ${verdicts.refused.length} refused, ${verdicts.opened.length} opened beside (${verdicts.opened.join("; ")}); 0 pages left unusable, the first project whole after each`);
  } finally {
    await context.close();
  }
});

/** What the page keeps, damaged in IndexedDB as a bug or another version might leave it, and
 * what the page says after (null: nothing to say: the model file's own labels are used). */
const STORED = [
  ["settings with an unknown choice", (meta) => (meta.settings = { framing: "sideways" }), /the settings/],
  ["settings a list", (meta) => (meta.settings = [1]), /the settings/],
  ["model labels null", (meta) => (meta.model.labels = null), null],
  ["model labels of another model", (meta) => (meta.model.labels = ["x", "y"]), /the model/],
  ["model figures of photos it does not have", (meta) => (meta.model.checkedPhotos = [{ photoId: "nobody", actual: 0, predicted: 5, confidence: 2 }]), /the model/],
  ["model bytes not a model", (meta) => (meta.model.bytes = new Uint8Array([1, 2, 3])), /the model/],
  ["model a number", (meta) => (meta.model = 7), /the model/],
  ["classes not a list", (meta) => (meta.classes = { a: 1 }), /the list of classes/],
  ["a class without a name", (meta) => (meta.classes[0].name = null), /the list of classes/],
];

test("stored state damaged in every way: the page starts, keeps every photo, sets aside the rest", { timeout: 900_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  const errors = [];
  try {
    const page = await openPage(context, "?device=cpu");
    page.on("pageerror", (e) => errors.push(e.message));
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 3));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 2));
    assert.deepEqual(await settled(page, [3, 2]), [3, 2]);
    await trainAndWait(page);
    await page.waitForTimeout(500); // the meta record is written 150 ms after a change
    const db = await openProjectDatabase(page);
    const good = await page.evaluate(async (db) => {
      const open = await new Promise((ok) => (indexedDB.open(db).onsuccess = (e) => ok(e.target.result)));
      const t = open.transaction("meta");
      const r = t.objectStore("meta").get("project");
      await new Promise((ok) => (t.oncomplete = ok));
      open.close();
      return { ...r.result, model: { ...r.result.model, bytes: [...r.result.model.bytes] } };
    }, db);
    for (const [name, mutate, said] of STORED) {
      const meta = structuredClone(good);
      meta.model.bytes = new Uint8Array(meta.model.bytes);
      mutate(meta);
      await page.evaluate(
        async ({ db, meta }) => {
          if (meta.model?.bytes && !(meta.model.bytes instanceof Uint8Array)) meta.model.bytes = new Uint8Array(Object.values(meta.model.bytes));
          const open = await new Promise((ok) => (indexedDB.open(db).onsuccess = (e) => ok(e.target.result)));
          const t = open.transaction("meta", "readwrite");
          t.objectStore("meta").put(meta, "project");
          await new Promise((ok) => (t.oncomplete = ok));
          open.close();
        },
        { db, meta },
      );
      await page.reload();
      const after = await usable(page);
      assert.equal(after.engine, "cpu", `${name}: the page starts (${await page.textContent("#engine-status")})`);
      if (said) assert.match(await page.textContent("#notice"), said, `${name}: says what was set aside`);
      else {
        await page.waitForFunction(() => !document.querySelector("#export-model").disabled, null, { timeout: 30_000 });
        assert.doesNotMatch((await page.textContent("#notice")) ?? "", /set aside/, `${name}: nothing to set aside`);
      }
      // Classes found again from the photos come in the order of their ids: compare sorted.
      let counts = [];
      for (let tries = 0; tries < 300 && counts.reduce((a, b) => a + b, 0) !== 5; tries++) {
        await page.waitForTimeout(100);
        counts = await counts_(page);
      }
      assert.deepEqual(counts.slice().sort(), [2, 3], `${name}: every photo kept (${counts})`);
      assert.equal((await storedRecords(page)).photos.length, 5, `${name}: every photo record kept`);
      // A second reload: the page set it right, and says nothing more.
      await page.reload();
      await usable(page);
      assert.doesNotMatch((await page.textContent("#notice")) ?? "", /set aside/, `${name}: said once`);
    }
    assert.deepEqual(errors, [], "page errors");
    console.log(`# stored project damaged ${STORED.length} ways: the page started every time, 5 of 5 photos kept, what could not be used set aside and said once`);
  } finally {
    await context.close();
  }
});
