// Storage full, for real: Chromium's profile on a small tmpfs (Chromium ignores DevTools'
// quota override). Photos are added until the disk is full: the page says so, keeps everything
// stored before, and after a reload the engine still starts (the weights cache and the
// offline copy are optimisations) and every kept photo is there. Needs root (mount); skipped
// otherwise, with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startServer, launch, launchPrivate, echoConsole, screenshot, tempDir } from "./browser.mjs";
import { pageOpener, teach, settled, trainAndWait, predictFile, photosOf } from "./steps.mjs";
import { unzipSync } from "../../www/vendor/fflate.js";

const { origin } = await startServer();
const openPage = pageOpener(origin);
const SIZE_MB = 48;

function mountTmpfs() {
  const dir = tempDir("full");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${SIZE_MB}m`, "tmpfs", dir], { stdio: "pipe" });
    return dir;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

async function ready(page) {
  await page.waitForFunction(() => ["webgpu", "cpu", "error"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
  assert.equal(await page.getAttribute("body", "data-engine"), "cpu", await page.textContent("#engine-status"));
}

/** The first class's photo count as it says it (thumbnails are virtualised), once no photo
 * is still being read. */
async function keptCount(page) {
  await page.waitForFunction(() => !/to go/.test(document.querySelector(".class-card .count").textContent), null, { timeout: 300_000 });
  return Number((await page.textContent(".class-card .count")).match(/^(\d+) photo/)[1]);
}

/** Drop `n` photos of noise (hard to compress: they fill the disk fast) on the first class. */
const dropNoise = (page, n, seed) =>
  page.evaluate(
    async ([n, seed]) => {
      const transfer = new DataTransfer();
      for (let i = 0; i < n; i++) {
        const canvas = new OffscreenCanvas(448, 448);
        const g = canvas.getContext("2d");
        const data = g.createImageData(448, 448);
        for (let j = 0; j < data.data.length; j++) data.data[j] = (Math.sin((j + 1) * (seed + i + 1) * 12.9898) * 43758.5453) % 1 * 255;
        g.putImageData(data, 0, 0);
        transfer.items.add(new File([await canvas.convertToBlob({ type: "image/png" })], `noise-${seed}-${i}.png`, { type: "image/png" }));
      }
      document.querySelector(".class-card .drop").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
    },
    [n, seed],
  );

test("storage full: said, nothing kept is lost, and the engine still starts", { timeout: 900_000 }, async (t) => {
  const disk = mountTmpfs();
  if (!disk) return t.skip("cannot mount a tmpfs here (needs root)");
  const { context } = await launch({ webgpu: false, userDataDir: join(disk, "profile") });
  try {
    const page = await context.newPage();
    echoConsole(page);
    await page.goto(`${origin}/?device=cpu`);
    await ready(page);
    let full = false;
    let batches = 0;
    while (!full && batches < 40) {
      await dropNoise(page, 10, batches++);
      const n = await keptCount(page);
      if (process.env.VERBOSE) console.log(`batch ${batches}: ${n} kept; ${execFileSync("df", ["-k", disk]).toString().split("\n")[1]}; ${await page.textContent("#notice")}`);
      full = /storage for this page is full/.test(await page.textContent("#notice"));
    }
    assert.ok(full, `the disk never filled in ${batches} batches of 10 photos`);
    const notice = await page.textContent("#notice");
    await screenshot(page, "storage-full");
    const shown = await keptCount(page);
    const kept = await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const open = indexedDB.open("fewshot");
          open.onsuccess = () => {
            const request = open.result.transaction("photos").objectStore("photos").count();
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          };
          open.onerror = () => reject(open.error);
        }),
    );
    assert.ok(kept > 0, "photos were kept before the disk filled");
    assert.equal(shown, kept, "the page shows as kept exactly the photos that are stored");

    await page.reload();
    await ready(page);
    assert.equal(await keptCount(page), kept, "every photo kept before the disk filled is there after a reload");
    console.log(`# storage full (${SIZE_MB} MB disk): after ${batches * 10} photos offered, ${kept} kept and all back after a reload; the engine started again; said: "${notice.slice(0, 90)}…"`);
  } finally {
    await context.close();
    execFileSync("umount", ["-l", disk]);
    rmSync(disk, { recursive: true, force: true });
  }
});

/** Save the project (the page's Save project) and count the photos in the file. */
async function savedPhotos(page) {
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 120_000 }), page.click("#save-project")]);
  const saved = unzipSync(new Uint8Array(readFileSync(await download.path())));
  return Object.keys(saved).filter((f) => f.startsWith("photos/")).length;
}

// WebKit's storage in a private window (and in its automation sessions) refuses a Blob ("Error
// preparing Blob/File data to be stored in object store") and keeps an ArrayBuffer. Chromium's
// IndexedDB is made to refuse a photo record that holds a Blob the same way: the photos must be
// kept as bytes, all there after a reload, trained on, saved in a project file.
test("a storage that refuses Blobs, as WebKit's in a private window: photos kept as bytes", { timeout: 600_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  try {
    await context.addInitScript(() => {
      const put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function (value, ...key) {
        if (this.name === "photos" && value?.image instanceof Blob) throw new DOMException("Error preparing Blob/File data to be stored in object store", "UnknownError");
        return put.call(this, value, ...key);
      };
    });
    const page = await openPage(context, "?device=cpu");
    await ready(page);
    assert.deepEqual(await teach(page, { hat: 4, shoes: 4 }), [4, 4]);
    assert.match(await page.textContent("#notice"), /private window, everything here is forgotten when it closes: use Save project/, "what it means, said");
    const stored = await page.evaluate(() => new Promise((resolve) => {
      indexedDB.open("fewshot").onsuccess = ({ target }) => {
        const all = target.result.transaction("photos").objectStore("photos").getAll();
        all.onsuccess = () => resolve(all.result.map((p) => [p.image instanceof Blob, p.bytes instanceof ArrayBuffer && p.bytes.byteLength > 0]));
      };
    }));
    assert.deepEqual(stored, Array(8).fill([false, true]), "each photo kept as its bytes");
    await page.reload();
    await ready(page);
    assert.deepEqual(await settled(page, [4, 4]), [4, 4], "every photo after a reload");
    await page.waitForFunction(() => [...document.querySelectorAll(".class-card .thumb img")].filter((i) => i.complete && i.naturalWidth > 0).length === 8, null, { timeout: 30_000 })
      .catch(() => assert.fail("the thumbnails of the photos kept as bytes are shown"));
    assert.match(await trainAndWait(page), /^Trained/);
    assert.match(await predictFile(page, photosOf("test", "hat", 1)[0]), /“hat”/);
    assert.equal(await savedPhotos(page), 8, "every photo in the saved project");
    console.log("# storage refusing Blobs: 8 photos kept as bytes, shown after a reload, trained, predicted, saved");
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// A private window in Chromium (an off-the-record context: nothing on disk, forgotten when it
// closes): the whole flow works, and the photos are there after a reload while it is open.
test("a private window in Chromium: teach, train, predict, reload, save", { timeout: 600_000 }, async () => {
  const { context } = await launchPrivate();
  try {
    const page = await openPage(context, "?device=cpu");
    await ready(page);
    assert.deepEqual(await teach(page, { hat: 4, shoes: 4 }), [4, 4]);
    assert.match(await trainAndWait(page), /^Trained/);
    assert.match(await predictFile(page, photosOf("test", "shoes", 1)[0]), /“shoes”/);
    await page.reload();
    await ready(page);
    assert.deepEqual(await settled(page, [4, 4]), [4, 4], "every photo after a reload");
    assert.equal(await savedPhotos(page), 8, "every photo in the saved project");
    console.log("# private window (Chromium): 8 photos, trained, predicted, all back after a reload, saved");
  } finally {
    await context.close();
  }
});
