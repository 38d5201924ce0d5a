// The page in Debian's Firefox ESR (headless, driven by puppeteer-core over WebDriver BiDi): the
// smoke of the whole flow. Ready (on the CPU: headless Firefox on Linux offers no WebGPU adapter,
// which the page finds by feature detection), photos added by the file picker, trained, a photo
// predicted, everything back after a reload, and after a reload with the server shut down
// (offline, from the service worker); the project saved as a file and opened again. The full
// suite runs in Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { startServer, shutDown, tempDir, OUTPUT } from "./browser.mjs";
import { photosOf, CATCH_DOWNLOAD } from "./steps.mjs";

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";
const { server, origin } = await startServer();

/** Each class card's count of photos kept, once none is being read. */
const settledCounts = (page, expected) =>
  page
    .waitForFunction(
      (expected) => {
        const counts = [...document.querySelectorAll(".class-card .count")].map((c) => c.textContent);
        return !counts.some((t) => /to go/.test(t)) && JSON.stringify(counts.map((t) => Number(t.match(/^(\d+)/)?.[1] ?? 0))) === JSON.stringify(expected);
      },
      { timeout: 300_000 },
      expected,
    )
    .catch(async () => assert.fail(`photos kept: ${await page.$$eval(".class-card .count", (cs) => cs.map((c) => c.textContent).join(", "))}, not ${expected}`));

const ready = (page) =>
  page.waitForFunction(() => ["webgpu", "cpu", "error"].includes(document.body.dataset.engine), { timeout: 300_000 }).then(async () => {
    assert.notEqual(await page.$eval("body", (b) => b.dataset.engine), "error", await page.$eval("#engine-status", (s) => s.textContent));
  });

test("Firefox ESR: ready, photos, train, predict, reload, offline, save and open", { timeout: 900_000, skip: existsSync(FIREFOX) ? false : `no ${FIREFOX}` }, async () => {
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, userDataDir: tempDir("firefox") });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.log(`# firefox page error: ${e.message}`));
    await page.goto(`${origin}/`);
    await ready(page);
    const device = await page.$eval("body", (b) => b.dataset.engine);
    const started = Date.now();
    const names = ["hat", "shoes"];
    for (const [i, name] of names.entries()) {
      // The class name as typed: the page listens for input events.
      await page.evaluate((i, name) => {
        const input = document.querySelectorAll(".class-card .class-name")[i];
        input.value = name;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      }, i, name);
      const [picker] = await page.$$(`.class-card:nth-child(${i + 1}) .file-input`);
      await picker.uploadFile(...photosOf("train", name, 5));
    }
    await settledCounts(page, [5, 5]);
    const addSeconds = (Date.now() - started) / 1000;
    await page.click("#train");
    await page.waitForFunction(() => /^Trained/.test(document.querySelector("#train-status").textContent), { timeout: 300_000 });
    const [preview] = await page.$$("#preview-file");
    await preview.uploadFile(photosOf("test", "shoes", 1)[0]);
    await page.waitForFunction(() => /“shoes”/.test(document.querySelector("#verdict").textContent), { timeout: 120_000 })
      .catch(async () => assert.fail(`the prediction: "${await page.$eval("#verdict", (v) => v.textContent)}"`));
    await page.screenshot({ path: join(OUTPUT, "firefox-trained.png"), fullPage: true });

    await page.reload();
    await ready(page);
    await settledCounts(page, [5, 5]);
    assert.ok(await page.$eval("#results", (r) => !r.hidden), "the model after a reload");
    assert.deepEqual(await page.$$eval(".class-card .class-name", (is) => is.map((i) => i.value)), names);

    // Offline: the service worker keeps every file after the first visit.
    await page.waitForFunction(() => document.body.dataset.offline === "ready", { timeout: 120_000 });
    await shutDown(server);
    await page.reload();
    await ready(page);
    await settledCounts(page, [5, 5]);

    // Save the project, and open the file again: a second project, whole.
    await page.evaluate(CATCH_DOWNLOAD);
    await page.click("#save-project");
    const saved = await page.evaluate(() => Promise.race([window.fewshotSaved, new Promise((r) => setTimeout(() => r({ error: document.querySelector("#notice").textContent }), 60_000))]));
    assert.ok(saved.base64, `the project saved: ${saved.error}`);
    const file = join(tempDir("saved"), saved.name);
    writeFileSync(file, Buffer.from(saved.base64, "base64"));
    const [opener] = await page.$$("#open-project");
    await Promise.all([page.waitForNavigation({ timeout: 120_000 }), opener.uploadFile(file)]);
    await ready(page);
    await settledCounts(page, [5, 5]);
    assert.equal(await page.$$eval("#project-select option", (os) => os.length), 2, "the file opened as a second project");
    console.log(`# firefox: ready on ${device}; 10 photos added in ${addSeconds.toFixed(1)} s; trained; a shoe called "shoes"; all back after a reload, and after one with the server shut down; saved and opened again`);
  } finally {
    await browser.close();
  }
});
