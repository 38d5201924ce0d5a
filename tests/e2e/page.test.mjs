// The page as a person uses it, in Debian's headless Chromium: real photos from
// ../shared/datasets/clothing-small, real weights, the real wasm engine in its worker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { zipSync, unzipSync } from "../../www/vendor/fflate.js";
import { startServer, launch, recordRequests, screenshot, shutDown, SHARED, OUTPUT, ROOT, tempDir } from "./browser.mjs";
import { photosOf, pageOpener, card, nameClass, counts, settled, dropFiles, trainAndWait, predictFile } from "./steps.mjs";

const FIXTURES = join(ROOT, "tests/e2e/fixtures");
const { origin } = await startServer();
const openPage = pageOpener(origin);

test("teach three classes, train, understand, predict, reload, save, open, export", { timeout: 900_000 }, async () => {
  const { context, dir } = await launch({ webgpu: true });
  const requests = recordRequests(context);
  const page = await openPage(context);
  await screenshot(page, "1-empty");

  // Refused with a reason before there are photos.
  await page.click("#train");
  await page.waitForFunction(() => !/Training/.test(document.querySelector("#train-status").textContent));
  assert.match(await page.textContent("#train-status"), /at least two classes/);

  await nameClass(page, 0, "hat");
  await nameClass(page, 1, "pants");
  await page.click("#add-class");
  await nameClass(page, 2, "shoes");

  // Real photos through the real file input, and through a drop.
  await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 6));
  await dropFiles(page, 1, photosOf("train", "pants", 6));
  await card(page, 2).locator(".file-input").setInputFiles(photosOf("train", "shoes", 6));
  const started = Date.now();
  assert.deepEqual(await settled(page, [6, 6, 6]), [6, 6, 6]);
  const embedSeconds = (Date.now() - started) / 1000;
  await screenshot(page, "2-photos");

  // Train: the chart is drawn while it runs, then the figures and the confusion matrix.
  await page.click("#advanced summary");
  await page.click("#train");
  await page.waitForSelector("#chart-figure:not([hidden])");
  await screenshot(page, "3-training");
  await page.waitForFunction(() => /^Trained/.test(document.querySelector("#train-status").textContent), null, { timeout: 300_000 });
  const status = await page.textContent("#train-status");
  // An honest figure: cross-validated (18 photos: each left out in turn), with its range.
  assert.match(status, /accuracy on new photos: about \d+ % \(likely \d+ to \d+ %\), cross-validated on 18 photos/);
  assert.match(await page.textContent("#accuracy-summary"), /cross-validated on 18 photos/);
  assert.equal(await page.locator("#confusion tr").count(), 4);
  assert.equal(await page.locator("#per-class tr").count(), 4);
  await page.locator("#confusion .cell.diagonal").first().click();
  await page.waitForSelector("#inspect:not([hidden]) img");
  await screenshot(page, "4-results");

  // The model card: classes with their photo counts, the cross-validated figure, the backbone.
  await page.click("#model-card");
  await page.waitForSelector("#card-dialog[open]");
  const cardText = await page.textContent("#card-text");
  assert.match(cardText, /^# Model card: hat, pants, shoes/);
  assert.match(cardText, /\| hat \| 6 \| \d+ % \|/);
  assert.match(cardText, /cross-validated on 18 photos/);
  assert.match(cardText, /Backbone sha256: `[0-9a-f]{64}`/);
  await screenshot(page, "4-model-card");
  await page.click("#card-close");
  await page.waitForSelector("#card-dialog:not([open])", { state: "attached" });

  // Predict held-back test photos.
  const hat = photosOf("test", "hat", 1)[0];
  assert.match(await predictFile(page, hat), /This looks like “hat”/);
  assert.equal(await page.isVisible("#preview-heat"), true, "where it looked is shown over the photo");
  const parrot = join(SHARED, "fixtures/images/parrot.jpg");
  assert.match(await predictFile(page, parrot), /None of these/, "a parrot is none of hat, pants and shoes");
  assert.equal(await page.isVisible("#preview-heat"), false, "no heatmap for a photo that is none of the classes");
  await screenshot(page, "5-none-of-these");
  const shoe = photosOf("test", "shoes", 1)[0];
  assert.match(await predictFile(page, shoe), /This looks like “shoes”/);
  await screenshot(page, "5-prediction");
  const bars = await page.$$eval("#bars .bar-label", (els) => els.map((e) => e.textContent));
  assert.deepEqual(bars, ["hat", "pants", "shoes"]);

  // Bad input next to where it was dropped; nothing added before is lost.
  const corrupt = join(OUTPUT, "corrupt.jpg");
  const real = readFileSync(photosOf("train", "hat", 1, 10)[0]);
  writeFileSync(corrupt, Buffer.concat([real.subarray(0, 40), Buffer.alloc(2000, 0x5a)]));
  const empty = join(OUTPUT, "empty.jpg");
  writeFileSync(empty, "");
  const text = join(OUTPUT, "notes.txt");
  writeFileSync(text, "not a photo");
  await card(page, 0).locator(".file-input").setInputFiles([corrupt, empty, text, join(FIXTURES, "cmyk.jpg"), join(FIXTURES, "transparent.png")]);
  assert.deepEqual(await settled(page, [8, 6, 6]), [8, 6, 6]);
  const problems = await card(page, 0).locator(".problems li").allTextContents();
  assert.equal(problems.length, 3, problems.join("\n"));
  assert.match(problems.join("\n"), /corrupt\.jpg: not a readable image/);
  assert.match(problems.join("\n"), /empty\.jpg: the file is empty \(0 bytes\)/);
  assert.match(problems.join("\n"), /notes\.txt: not an image: only JPEG/);
  const huge = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(12000, 12000);
    const g = canvas.getContext("2d");
    g.fillStyle = "#345";
    g.fillRect(0, 0, 12000, 12000);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.5 });
    const transfer = new DataTransfer();
    transfer.items.add(new File([blob], "huge.jpg", { type: "image/jpeg" }));
    document.querySelectorAll(".class-card .drop")[1].dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
    return blob.size;
  });
  assert.ok(huge > 0);
  await page.waitForFunction(() => {
    const c = document.querySelectorAll(".class-card")[1];
    return c.querySelectorAll(".thumb").length === 7 || c.querySelectorAll(".problems li").length > 0;
  }, null, { timeout: 120_000 });
  await page.waitForFunction(() => !document.querySelector(".thumb.busy"), null, { timeout: 300_000 });
  const afterHuge = await counts(page);
  assert.equal(afterHuge[0], 8);
  assert.ok(afterHuge[1] === 7 || (await card(page, 1).locator(".problems li").count()) === 1);
  await screenshot(page, "6-bad-input");
  // Remove the 12000 px photo again (if it was taken) so the classes stay as trained.
  if (afterHuge[1] === 7) {
    await card(page, 1).locator(".thumb").last().hover();
    await card(page, 1).locator(".thumb .remove").last().click();
  }

  // A reload keeps classes, photos and the model.
  const before = await predictFile(page, hat);
  await page.reload();
  await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
  assert.deepEqual(await settled(page, [8, 6, 6]), [8, 6, 6]);
  assert.deepEqual(await page.$$eval(".class-name", (els) => els.map((e) => e.value)), ["hat", "pants", "shoes"]);
  assert.ok(!(await page.isHidden("#results")));
  assert.equal(await predictFile(page, hat), before);

  // Save the project; open it in a fresh profile; same prediction.
  const [saved] = await Promise.all([page.waitForEvent("download"), page.click("#save-project")]);
  const projectPath = join(OUTPUT, "fewshot-project.zip");
  await saved.saveAs(projectPath);
  const [exported] = await Promise.all([page.waitForEvent("download"), page.click("#export-model")]);
  const modelPath = join(OUTPUT, "model.fewshot");
  await exported.saveAs(modelPath);

  // The TFLite export: Google's LiteRT (the venv ./build.sh litert makes) labels the photo too.
  const [tflite] = await Promise.all([page.waitForEvent("download"), page.click("#export-tflite")]);
  const tflitePath = join(OUTPUT, "fewshot-model.tflite");
  await tflite.saveAs(tflitePath);
  assert.equal(readFileSync(tflitePath).subarray(4, 8).toString(), "TFL3");
  const python = join(ROOT, "target/venv-litert/bin/python");
  if (existsSync(python)) {
    const label = execFileSync(python, [join(ROOT, "tests/litert/check.py"), "label", tflitePath, hat], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.equal(label.trim(), "hat", "LiteRT's label of the held-out hat");
    console.log(`# TFLite export: ${(statSync(tflitePath).size / 1e6).toFixed(1)} MB; LiteRT calls the held-out hat "${label.trim()}"`);
  } else {
    console.log("# TFLite export: LiteRT not installed here (./build.sh litert installs it); only the file's identifier checked");
  }

  // The web app export: unpacked, served on its own, used with its server shut down.
  const [webapp] = await Promise.all([page.waitForEvent("download"), page.click("#export-webapp")]);
  const webappPath = join(OUTPUT, "fewshot-web-app.zip");
  await webapp.saveAs(webappPath);
  const webappSize = statSync(webappPath).size;
  const appDir = tempDir("webapp");
  for (const [path, data] of Object.entries(unzipSync(readFileSync(webappPath)))) {
    mkdirSync(dirname(join(appDir, path)), { recursive: true });
    writeFileSync(join(appDir, path), data);
  }
  const { server: appServer, origin: appOrigin } = await startServer({}, appDir);
  const appPage = await context.newPage();
  await appPage.goto(appOrigin);
  await appPage.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 300_000 });
  assert.equal(await appPage.textContent("#title"), "hat · pants · shoes");
  // Its own service worker (sw.js in the ZIP) has kept every file of the app.
  await appPage.waitForFunction(() => document.body.dataset.offline === "ready", null, { timeout: 120_000 });
  await shutDown(appServer);
  const appFailed = [];
  appPage.on("requestfailed", (r) => new URL(r.url()).pathname !== "/favicon.ico" && appFailed.push(r.url()));
  /** The app's verdict on a photo (the old one cleared first, so that the new one is waited for). */
  const appClassify = async (path) => {
    await appPage.$eval("#verdict", (v) => (v.textContent = ""));
    await appPage.setInputFiles("#file", path);
    await appPage.waitForFunction(() => /looks like|Not sure|none of these/i.test(document.querySelector("#verdict").textContent), null, { timeout: 120_000 });
    return appPage.textContent("#verdict");
  };
  assert.match(await appClassify(hat), /This looks like “hat”/);
  // "None of these" is the answer: no class is named as one, and the bars say they are none.
  const appNone = await appClassify(parrot);
  assert.match(appNone, /^(Probably n|N)one of these/);
  assert.doesNotMatch(appNone, /hat|pants|shoes|looks like “/);
  assert.equal(await appPage.isVisible("#bars-note"), true, "the bars are said to be no answer");
  assert.equal(await appPage.getAttribute("#bars", "class"), "bars secondary");
  await screenshot(appPage, "8-web-app-none-of-these");
  // Reloaded with its server gone: it opens from its service worker, and classifies.
  await appPage.reload();
  await appPage.waitForFunction(() => document.body.dataset.ready === "true" || /Could not/.test(document.querySelector("#status").textContent), null, { timeout: 300_000 });
  assert.equal(await appPage.getAttribute("body", "data-ready"), "true", await appPage.textContent("#status"));
  assert.match(await appClassify(hat), /This looks like “hat”/);
  assert.equal(await appPage.isVisible("#bars-note"), false);
  assert.deepEqual(appFailed, [], "the web app's requests that failed with its server gone");
  await screenshot(appPage, "8-web-app");
  await appPage.close();
  rmSync(appDir, { recursive: true, force: true });
  console.log(`# web app export: ${(webappSize / 1e6).toFixed(1)} MB; served, then used and reloaded with its server shut down`);

  // Only the page's own origin (and the web app's, on its own server).
  const elsewhere = requests.filter((r) => /^https?:/.test(r.url) && !r.url.startsWith(origin) && !r.url.startsWith(appOrigin));
  assert.deepEqual(elsewhere, [], "requests to other origins");
  await context.close();
  rmSync(dir, { recursive: true, force: true });

  const fresh = await launch({ webgpu: true });
  const requests2 = recordRequests(fresh.context);
  const page2 = await openPage(fresh.context);
  const countAtReady = requests2.filter((r) => /^https?:/.test(r.url)).length;
  assert.deepEqual(await settled(page2, [0, 0]), [0, 0], "a fresh profile starts with two empty classes");
  // Opened as a new project beside the first (the page reloads into it).
  await Promise.all([page2.waitForEvent("load", { timeout: 60_000 }), page2.setInputFiles("#open-project", projectPath)]);
  await page2.waitForFunction(() => document.querySelectorAll(".class-card").length === 3, null, { timeout: 60_000 });
  assert.deepEqual(await page2.$$eval("#project-select option", (os) => os.map((o) => [o.textContent, o.selected])), [["My project", false], ["fewshot-project", true]]);
  assert.deepEqual(await settled(page2, [8, 6, 6]), [8, 6, 6]);
  assert.equal(await predictFile(page2, hat), before);
  // A truncated project file and one from another program are refused; the project stays.
  const bytes = readFileSync(projectPath);
  const truncated = join(OUTPUT, "truncated.zip");
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await page2.setInputFiles("#open-project", truncated);
  await page2.waitForFunction(() => /truncated\.zip is a damaged ZIP/.test(document.querySelector("#notice").textContent));
  const flipped = join(OUTPUT, "flipped.zip");
  const damaged = Buffer.from(bytes);
  damaged[200] ^= 0xff; // inside the first photo, stored as it is
  writeFileSync(flipped, damaged);
  await page2.setInputFiles("#open-project", flipped);
  await page2.waitForFunction(() => /does not match its checksum/.test(document.querySelector("#notice").textContent));
  await page2.setInputFiles("#open-project", join(FIXTURES, "cmyk.jpg"));
  await page2.waitForFunction(() => /not a Fewshot project/.test(document.querySelector("#notice").textContent));
  assert.deepEqual(await settled(page2, [8, 6, 6]), [8, 6, 6]);
  // After ready, only the page's own files: the engine's helper workers (pool.js) load its
  // scripts and wasm, and opening a project reloads the page into it. Nothing from elsewhere.
  const afterLoad = requests2.filter((r) => /^https?:/.test(r.url)).slice(countAtReady).map((r) => r.url);
  assert.deepEqual(afterLoad.filter((url) => !url.startsWith(origin)), [], `requests after the page was ready: ${afterLoad}`);

  // A data set someone downloaded: a ZIP of one folder per class (and a file that is not a photo).
  const dataset = join(OUTPUT, "dataset.zip");
  const folders = { "clothes/README.txt": Buffer.from("not a photo") };
  for (const label of ["hat", "shoes"]) for (const p of photosOf("train", label, 3, 20)) folders[`clothes/${label}/${p.split("/").pop()}`] = readFileSync(p);
  writeFileSync(dataset, zipSync(folders));
  await Promise.all([page2.waitForEvent("load", { timeout: 60_000 }), page2.setInputFiles("#open-project", dataset)]);
  await page2.waitForFunction(() => /^Opened dataset\.zip as a new project, "dataset": 2 classes, 6 photos; 1 files that are not photos/.test(document.querySelector("#notice").textContent));
  assert.deepEqual(await settled(page2, [3, 3]), [3, 3]);
  assert.deepEqual(await page2.$$eval(".class-name", (els) => els.map((e) => e.value)), ["hat", "shoes"]);

  // The exported model in www/package/example.html gives the same label.
  await page2.route("**/model.fewshot", (route) => route.fulfill({ body: readFileSync(modelPath), contentType: "application/octet-stream" }));
  await page2.goto(`${origin}/package/example.html`);
  await page2.waitForFunction(() => /^Ready/.test(document.querySelector("output").textContent), null, { timeout: 300_000 });
  await page2.setInputFiles("input[type=file]", hat);
  await page2.waitForFunction(() => /%\)$/.test(document.querySelector("output").textContent), null, { timeout: 120_000 });
  assert.match(await page2.textContent("output"), /^hat /);
  await screenshot(page2, "7-example");
  await fresh.context.close();
  rmSync(fresh.dir, { recursive: true, force: true });
  console.log(`# page (auto device): 18 photos embedded in ${embedSeconds.toFixed(1)} s; ${status}`);
});

test("without WebGPU: a folder of folders makes the classes, and it all runs on the CPU", { timeout: 600_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  const page = await openPage(context);
  assert.equal(await page.getAttribute("body", "data-engine"), "cpu");
  assert.match(await page.textContent("#engine-status"), /Ready on CPU/);
  const folder = join(OUTPUT, "folders");
  rmSync(folder, { recursive: true, force: true });
  for (const label of ["dress", "shoes"]) {
    mkdirSync(join(folder, label), { recursive: true });
    for (const p of photosOf("train", label, 5)) copyFileSync(p, join(folder, label, p.split("/").pop()));
  }
  await card(page, 0).locator(".folder-input").setInputFiles(folder);
  assert.deepEqual(await settled(page, [5, 5]), [5, 5]);
  assert.deepEqual(await page.$$eval(".class-name", (els) => els.map((e) => e.value)), ["dress", "shoes"]);
  const started = Date.now();
  const status = await trainAndWait(page);
  const trainSeconds = (Date.now() - started) / 1000;
  assert.match(await predictFile(page, photosOf("test", "shoes", 1)[0]), /“shoes”/);
  console.log(`# page without WebGPU: ${status} (${trainSeconds.toFixed(1)} s from click)`);

  // At a phone's width: nothing past the right edge, the thumbnails laid out again in the
  // columns that fit, and a class's buttons above its photos (a new row of photos never moves
  // "Hold to capture" under the finger).
  // A class's first photos are laid out while its grid is still hidden: then too.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#add-class");
  await card(page, 2).locator(".class-name").fill("hat");
  await card(page, 2).locator(".file-input").setInputFiles(photosOf("train", "hat", 7));
  assert.deepEqual(await settled(page, [5, 5, 7]), [5, 5, 7]);
  await page.waitForFunction(() => [...document.querySelectorAll(".class-card .thumbs")].every((grid) => {
    const right = grid.getBoundingClientRect().right;
    return [...grid.querySelectorAll(".thumb")].every((t) => t.getBoundingClientRect().right <= right + 1);
  }), null, { timeout: 10_000 }).catch(() => assert.fail("thumbnails past their grid's edge at 390 px"));
  const past = await page.evaluate(() =>
    [...document.querySelectorAll("button, label, select, input, canvas, table, img, video")]
      .filter((e) => e.offsetParent && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .map((e) => e.id || e.className || e.tagName));
  assert.deepEqual(past, [], "controls past the right edge at 390 px");
  const above = await card(page, 0).evaluate((c) => c.querySelector(".add-photos").getBoundingClientRect().bottom <= c.querySelector(".thumbs").getBoundingClientRect().top);
  assert.ok(above, "a class's buttons above its photos");
  await screenshot(page, "phone-390");
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});

test("on WebGPU (SwiftShader, forced): embed, train and predict", { timeout: 900_000 }, async () => {
  const { context, dir } = await launch({ webgpu: true });
  const page = await openPage(context, "?device=webgpu");
  assert.equal(await page.getAttribute("body", "data-engine"), "webgpu");
  await nameClass(page, 0, "hat");
  await nameClass(page, 1, "shoes");
  const started = Date.now();
  await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 3));
  await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 3));
  assert.deepEqual(await settled(page, [3, 3], 600_000), [3, 3]);
  const perPhoto = (Date.now() - started) / 1000 / 6;
  const status = await trainAndWait(page);
  assert.match(await predictFile(page, photosOf("test", "shoes", 1)[0]), /“shoes”/);
  console.log(`# page on WebGPU/SwiftShader: ${perPhoto.toFixed(2)} s per photo added; ${status}`);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});
