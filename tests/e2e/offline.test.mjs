// Offline and installable, in Debian's headless Chromium: after one visit the server is shut
// down for real, and the page still opens, adds photos, trains and predicts. Then a new
// version appears on the server: the page offers "reload", and nothing is lost by it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch, screenshot, shutDown, startServer, ROOT, tempDir } from "./browser.mjs";
import { photosOf, pageOpener, card, settled, trainAndWait, predictFile } from "./steps.mjs";

test("offline after the first visit, installable, and updated without losing anything", { timeout: 600_000 }, async () => {
  // A copy of www/, so that a "new version" can be written into it.
  const www = tempDir("www");
  cpSync(join(ROOT, "www"), www, { recursive: true, dereference: true });
  let { server, origin } = await startServer({}, www);
  const port = server.address().port;
  const openPage = pageOpener(origin);
  // Chromium offers installing only after some use of a site; this flag skips the wait, so
  // that its offer (beforeinstallprompt) comes at once.
  const { context, dir } = await launch({ webgpu: false, args: ["--bypass-app-banner-engagement-checks"] });
  try {
    const page = await openPage(context, "?device=cpu");
    await page.waitForFunction(() => document.body.dataset.offline === "ready", null, { timeout: 120_000 });

    // Installable: Chromium finds nothing missing (manifest, icons, service worker).
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
    assert.deepEqual(installabilityErrors, [], "Chromium's reasons not to offer installing");
    const manifest = await cdp.send("Page.getAppManifest");
    assert.deepEqual(manifest.errors, []);
    // Chromium offers it, and the page shows its "Install app" button.
    await page.waitForSelector("#install", { state: "visible", timeout: 60_000 });
    await screenshot(page, "offline-1-online");

    // The server goes away. A reload still opens the page, from the service worker.
    await shutDown(server);
    const failed = [];
    context.on("requestfailed", (r) => failed.push(r.url()));
    await page.reload();
    await page.waitForFunction(() => ["webgpu", "cpu", "error"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    assert.equal(await page.getAttribute("body", "data-engine"), "cpu", await page.textContent("#engine-status"));

    // Offline: add photos, train, predict.
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 4));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 4));
    assert.deepEqual(await settled(page, [4, 4]), [4, 4]);
    assert.match(await trainAndWait(page), /^Trained/);
    assert.match(await predictFile(page, photosOf("test", "hat", 1)[0]), /This looks like “hat”/);
    await screenshot(page, "offline-2-offline");
    assert.deepEqual(failed, [], "requests that went to the network while offline");

    // A new version on the server: fetched in the background, offered, applied by a reload.
    const precache = join(www, "pkg/precache.js");
    writeFileSync(precache, readFileSync(precache, "utf8").replace(/version: "(\w+)"/, 'version: "$1-next"'));
    ({ server } = await startServer({}, www, port));
    await page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r.update()));
    await page.waitForSelector("#update:not([hidden])", { timeout: 120_000 });
    await screenshot(page, "offline-3-update");
    await Promise.all([page.waitForEvent("load", { timeout: 60_000 }), page.click("#update")]);
    await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [4, 4]), [4, 4], "the photos after the update");
    assert.ok(await page.isVisible("#results"), "the model after the update");
    // The new version deletes the old one's cache as it takes over, which may end after the
    // page has reloaded (the page changes worker first): wait for it.
    const oneVersion = () => caches.keys().then((keys) => keys.filter((k) => k.startsWith("fewshot-app-")).length === 1);
    await page.waitForFunction(oneVersion, null, { timeout: 30_000 })
      .catch(async () => assert.fail(`old versions not deleted: ${await page.evaluate(() => caches.keys())}`));
    console.log(`# offline: reload, 8 photos added, trained and a prediction made with the server shut down; update offered and applied`);
  } finally {
    await context.close();
    await shutDown(server);
    rmSync(dir, { recursive: true, force: true });
    rmSync(www, { recursive: true, force: true });
  }
});
