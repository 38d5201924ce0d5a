// Steps of a person using the page, shared by the page tests: open it, name classes, give
// photos, wait for them, train, predict.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { echoConsole, SHARED } from "./browser.mjs";

const CLOTHING = join(SHARED, "datasets/clothing-small");

/** The first `n` photos of a class, sorted by name. */
export function photosOf(split, label, n, skip = 0) {
  const dir = join(CLOTHING, split, label);
  return readdirSync(dir).sort().slice(skip, skip + n).map((f) => join(dir, f));
}

/** openPage(context, query): a new tab on the page at `origin`, once its engine is ready. */
export const pageOpener = (origin) => async function openPage(context, query = "") {
  const page = await context.newPage();
  echoConsole(page);
  await page.goto(`${origin}/${query}`);
  await page.waitForFunction(() => ["webgpu", "cpu", "error"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
  assert.notEqual(await page.getAttribute("body", "data-engine"), "error", await page.textContent("#engine-status"));
  // The service worker has kept every file (sw.js): from here on the page needs no network.
  await page.waitForFunction(() => document.body.dataset.offline === "ready", null, { timeout: 120_000 });
  return page;
};

export const card = (page, i) => page.locator(".class-card").nth(i);

/** Name the classes and give each its photos from clothing-small's training photos, `{ hat: 3,
 * shoes: 3 }` (as many classes as the page has cards); returns once every photo is ready. */
export async function teach(page, counts) {
  const labels = Object.keys(counts);
  for (const [i, label] of labels.entries()) {
    await card(page, i).locator(".class-name").fill(label);
    await card(page, i).locator(".file-input").setInputFiles(photosOf("train", label, counts[label]));
  }
  return settled(page, Object.values(counts));
}

export async function nameClass(page, i, name) {
  await card(page, i).locator(".class-name").fill(name);
}

/** Photos read and kept, per class (not those still being read, nor failed ones), as each
 * class card counts them ("12 photos · 3 to go"): a grid far from the screen holds no
 * thumbnails, so these are not counted by their elements. */
const cardCounts = () =>
  [...document.querySelectorAll(".class-card .count")].map((c) => {
    const [ready, toGo] = [/^(\d+) photo/, /(\d+) to go/].map((r) => Number(c.textContent.match(r)?.[1] ?? 0));
    return { ready, toGo };
  });
export const counts = (page) => page.evaluate(`(${cardCounts})().map((c) => c.ready)`);

/** Wait until each class shows `expected` photos and none is being embedded; returns the counts
 * (asked from here: the page's content security policy allows no eval in it). */
export async function settled(page, expected, timeout = 300_000) {
  const end = Date.now() + timeout;
  let shown = [];
  do {
    shown = await page.evaluate(`(${cardCounts})()`).catch(() => []); // [] while a reload runs
    if (shown.every((c) => c.toGo === 0) && JSON.stringify(shown.map((c) => c.ready)) === JSON.stringify(expected)) break;
    await new Promise((wake) => setTimeout(wake, 100));
  } while (Date.now() < end);
  return shown.map((c) => c.ready);
}

/** The database of the project the page has open (www/seam/database.js: one a project, the list in
 * "fewshot-projects"). */
export function openProjectDatabase(page) {
  return page.evaluate(() => new Promise((resolve) => {
    indexedDB.open("fewshot-projects").onsuccess = ({ target }) => {
      const list = target.result;
      if (!list.objectStoreNames.contains("chosen")) return list.close(), resolve("fewshot");
      const request = list.transaction("chosen").objectStore("chosen").get("project");
      request.onsuccess = () => (list.close(), resolve(request.result ?? "fewshot"));
    };
  }));
}

/** What IndexedDB holds for the open project: the photo records ({ id, classId, pending }) and
 * the ids of embeddings. */
export async function storedRecords(page) {
  const name = await openProjectDatabase(page);
  return page.evaluate(
    (name) =>
      new Promise((resolve) => {
        indexedDB.open(name).onsuccess = ({ target }) => {
          const t = target.result.transaction(["photos", "embeddings"]);
          const photos = t.objectStore("photos").getAll();
          const embeddings = t.objectStore("embeddings").getAllKeys();
          t.oncomplete = () => {
            target.result.close();
            resolve({ photos: photos.result.map((p) => ({ id: p.id, classId: p.classId, pending: !!p.pending })), embeddings: embeddings.result });
          };
        };
      }),
    name,
  );
}

/** Drop files on a class card the way a browser does: a drop event carrying a DataTransfer. */
export async function dropFiles(page, i, paths) {
  const files = paths.map((p) => ({ name: p.split("/").pop(), data: readFileSync(p).toString("base64") }));
  await card(page, i).locator(".drop").evaluate((zone, files) => {
    const transfer = new DataTransfer();
    for (const f of files) {
      const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], f.name, { type: f.name.endsWith(".png") ? "image/png" : "image/jpeg" }));
    }
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, files);
}

export async function trainAndWait(page) {
  await page.click("#train");
  await page.waitForSelector("#chart-figure:not([hidden])", { timeout: 120_000 });
  await page.waitForFunction(() => /^Trained/.test(document.querySelector("#train-status").textContent), null, { timeout: 300_000 });
  return page.textContent("#train-status");
}

export async function predictFile(page, path) {
  const previous = await page.getAttribute("#preview-image", "src");
  await page.setInputFiles("#preview-file", path);
  await page.waitForFunction(
    (previous) => document.querySelector("#preview-image").getAttribute("src") !== previous && /looks like|Not sure|[Nn]one of these/.test(document.querySelector("#verdict").textContent),
    previous,
    { timeout: 120_000 },
  );
  const bars = await page.$$eval("#bars .bar", (bars) => bars.map((b) => b.textContent).join(", "));
  return `${await page.textContent("#verdict")} (${bars})`;
}


/** In the page (a function's source, for any driver): catch the next file the page offers as a
 * download (draw.js's download(): a link clicked), as { name, base64 } in `window.fewshotSaved`
 * (a promise), instead of saving it. Other browsers' drivers have no common download API. */
export const CATCH_DOWNLOAD = `window.fewshotSaved = new Promise((resolve) => {
  // The Blob behind each object URL (fetching a blob: URL is against the page's policy).
  const blobs = new Map();
  const create = URL.createObjectURL;
  URL.createObjectURL = (object) => {
    const url = create(object);
    blobs.set(url, object);
    return url;
  };
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () {
    if (!this.download || !blobs.has(this.href)) return click.call(this);
    HTMLAnchorElement.prototype.click = click;
    URL.createObjectURL = create;
    const name = this.download;
    const reader = new FileReader();
    reader.onload = () => resolve({ name, base64: String(reader.result).split(",")[1] });
    reader.readAsDataURL(blobs.get(this.href));
  };
});
undefined;`; // as the last statement, so that a driver that returns the value does not wait for it
