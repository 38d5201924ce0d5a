// What is kept survives a reload, in Debian's headless Chromium: a project kept by the
// version before (IndexedDB version 2, where a photo given but not read yet was marked
// `pending: true`), upgraded when this version opens it; and a photo moved, a photo removed
// and a class deleted, each stored as it is done.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startServer, launch } from "./browser.mjs";
import { photosOf, pageOpener, settled, card, storedRecords } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);

test("a project kept by the version before opens whole, its pending photo too", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  try {
    // The origin, without the app: the database is written as version 2 wrote it.
    const setup = await context.newPage();
    await setup.goto(`${origin}/manifest.webmanifest`);
    const photos = [...photosOf("train", "hat", 2), ...photosOf("train", "shoes", 1)].map((p) => [...readFileSync(p)]);
    await setup.evaluate(async (photos) => {
      const db = await new Promise((ok, fail) => {
        const request = indexedDB.open("fewshot", 2);
        request.onupgradeneeded = () => {
          request.result.createObjectStore("photos", { keyPath: "id" });
          request.result.createObjectStore("meta");
          request.result.createObjectStore("embeddings", { keyPath: "id" });
        };
        request.onsuccess = () => ok(request.result);
        request.onerror = () => fail(request.error);
      });
      const t = db.transaction(["photos", "meta"], "readwrite");
      const bytes = (i) => new Uint8Array(photos[i]);
      t.objectStore("meta").put({ classes: [{ id: "a", name: "hat" }, { id: "b", name: "shoes" }], settings: {}, model: null }, "project");
      t.objectStore("photos").put({ id: "p2", classId: "a", added: 2, image: new Blob([bytes(1)], { type: "image/jpeg" }) });
      t.objectStore("photos").put({ id: "p1", classId: "a", added: 1, image: new Blob([bytes(0)], { type: "image/jpeg" }) });
      t.objectStore("photos").put({ id: "p3", classId: "b", added: 3, pending: true, name: "shoe.jpg", image: new Blob([bytes(2)]) });
      await new Promise((ok, fail) => ((t.oncomplete = ok), (t.onerror = () => fail(t.error))));
      db.close();
    }, photos);
    await setup.close();

    const page = await openPage(context, "?device=cpu");
    assert.deepEqual(await settled(page, [2, 1]), [2, 1]);
    const names = await page.$$eval(".class-name", (els) => els.map((e) => e.value));
    assert.deepEqual(names, ["hat", "shoes"]);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [2, 1]), [2, 1]);
    // The records as this version keeps them: in the order added, none pending any more.
    const records = await page.evaluate(async () => {
      const db = await new Promise((ok) => (indexedDB.open("fewshot").onsuccess = (e) => ok(e.target.result)));
      const t = db.transaction("photos");
      const request = t.objectStore("photos").index("byClass").getAllKeys();
      const all = t.objectStore("photos").getAll();
      await new Promise((ok) => (t.oncomplete = ok));
      db.close();
      return { ids: request.result, pending: all.result.filter((p) => p.pending).length, types: all.result.map((p) => p.image.type) };
    });
    assert.deepEqual(records.ids, ["p1", "p2", "p3"]);
    assert.equal(records.pending, 0);
    assert.deepEqual(records.types, ["image/jpeg", "image/jpeg", "image/jpeg"], "the pending one kept as the JPEG the engine wrote");
    console.log("# a version-2 project: 3 of 3 photos there after the upgrade and a reload, the pending one read, 0 pending left");
  } finally {
    await context.close();
  }
});

test("a photo moved, a photo removed and a class deleted are so after a reload", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  try {
    const page = await openPage(context, "?device=cpu");
    page.on("dialog", (d) => d.accept());
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 3));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 2));
    await page.click("#add-class");
    await card(page, 2).locator(".class-name").fill("pants");
    await card(page, 2).locator(".file-input").setInputFiles(photosOf("train", "pants", 2));
    assert.deepEqual(await settled(page, [3, 2, 2]), [3, 2, 2]);
    const ids = await page.$$eval(".class-card", (cards) => cards.map((c) => [...c.querySelectorAll(".thumb")].map((t) => t.dataset.photoId)));
    const classIds = await page.$$eval(".class-card", (cards) => cards.map((c) => c.dataset.classId));
    // The first hat to the shoes, the last shoe removed, the pants deleted.
    await card(page, 0).locator(`.thumb[data-photo-id="${ids[0][0]}"] .move`).selectOption(classIds[1]);
    await card(page, 1).locator(`.thumb[data-photo-id="${ids[1][1]}"] .remove`).click();
    await card(page, 2).locator(".delete-class").click();
    assert.deepEqual(await settled(page, [2, 2]), [2, 2]);
    await page.waitForTimeout(500); // the class list is written 150 ms after a change
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [2, 2]), [2, 2], "after the reload");
    const shown = await page.$$eval(".class-card", (cards) => cards.map((c) => [...c.querySelectorAll(".thumb")].map((t) => t.dataset.photoId).sort()));
    assert.deepEqual(shown, [[ids[0][1], ids[0][2]].sort(), [ids[1][0], ids[0][0]].sort()]);
    const kept = await storedRecords(page);
    assert.deepEqual(kept.photos.map((p) => [p.classId, p.id]).sort(), [[classIds[0], ids[0][1]], [classIds[0], ids[0][2]], [classIds[1], ids[1][0]], [classIds[1], ids[0][0]]].sort());
    assert.equal(kept.embeddings.length, 4, "the embeddings of the 4 photos kept, no others");
    console.log("# moved, removed, class deleted: after a reload the 4 photos left where they were put, no other record");
  } finally {
    await context.close();
  }
});
