// The page in Safari's engine: Debian's WebKitGTK (MiniBrowser under WebKitWebDriver, whose
// storage is ephemeral, as a private window's): the smoke of the whole flow. Ready (on the CPU:
// no WebGPU adapter), photos added by the file picker and kept (as bytes: this storage refuses
// Blobs, and the page says what a private window means), trained, a photo predicted, all back
// after a reload and after one with the server shut down (offline). Not yet here: a project saved
// and opened again (the file given to "Open project" was not opened; not found why). The full
// suite runs in Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, shutDown, OUTPUT } from "./browser.mjs";
import { photosOf } from "./steps.mjs";
import { webkitMissing, webkitSession } from "./webdriver.mjs";

const { server, origin } = await startServer();

const countsOf = `return [...document.querySelectorAll(".class-card .count")].map((c) => c.textContent)`;
const settled = (wk, expected) =>
  wk.waitFor(
    `const counts = [...document.querySelectorAll(".class-card .count")].map((c) => c.textContent);
     return !counts.some((t) => /to go/.test(t)) && counts.map((t) => Number(t.match(/^(\\d+)/)?.[1] ?? 0)).join() === "${expected.join()}"`,
    `${expected} photos kept`,
    300_000,
  ).catch(async (e) => assert.fail(`${e.message}: ${await wk.script(countsOf)}; said: "${await wk.script(`return document.querySelector("#notice").textContent`)}"`));
const ready = async (wk) => {
  const engine = await wk.waitFor(`const e = document.body.dataset.engine; return ["webgpu", "cpu", "error"].includes(e) && e`, "the engine", 300_000);
  assert.notEqual(engine, "error", await wk.script(`return document.querySelector("#engine-status").textContent`));
  return engine;
};

test("WebKit (Safari's engine), a private window's storage: ready, photos, train, predict, reload, offline", { timeout: 900_000, skip: webkitMissing() ?? false }, async () => {
  const wk = await webkitSession();
  try {
    await wk.url(`${origin}/`);
    const device = await ready(wk);
    const started = Date.now();
    const names = ["hat", "shoes"];
    for (const [i, name] of names.entries()) {
      await wk.script(
        `const input = document.querySelectorAll(".class-card .class-name")[arguments[0]];
         input.value = arguments[1];
         input.dispatchEvent(new Event("input", { bubbles: true }));`,
        i,
        name,
      );
      await wk.upload(`.class-card:nth-child(${i + 1}) .file-input`, photosOf("train", name, 5));
    }
    await settled(wk, [5, 5]);
    const addSeconds = (Date.now() - started) / 1000;
    const notice = await wk.script(`return document.querySelector("#notice").textContent`);
    await wk.script(`document.querySelector("#train").click()`);
    await wk.waitFor(`return /^Trained/.test(document.querySelector("#train-status").textContent)`, "training", 300_000);
    await wk.upload("#preview-file", photosOf("test", "shoes", 1));
    await wk.waitFor(`return /“shoes”/.test(document.querySelector("#verdict").textContent)`, "a shoe called shoes", 120_000)
      .catch(async (e) => assert.fail(`${e.message}: "${await wk.script(`return document.querySelector("#verdict").textContent`)}"`));
    await wk.screenshot(join(OUTPUT, "webkit-trained.png"));
    await wk.script(`location.reload()`);
    await new Promise((r) => setTimeout(r, 500));
    await ready(wk);
    await settled(wk, [5, 5]);
    assert.ok(await wk.script(`return !document.querySelector("#results").hidden`), "the model after a reload");

    // Offline: the service worker keeps every file after the first visit.
    await wk.waitFor(`return document.body.dataset.offline === "ready"`, "the files kept for offline use");
    await shutDown(server);
    await wk.script(`location.reload()`);
    await new Promise((r) => setTimeout(r, 500));
    await ready(wk);
    await settled(wk, [5, 5]);

    console.log(`# webkit: ready on ${device}; 10 photos added in ${addSeconds.toFixed(1)} s; trained; a shoe called "shoes"; all back after a reload, and after one with the server shut down; said: "${notice.slice(0, 100)}"`);
  } finally {
    await wk.close();
  }
});
