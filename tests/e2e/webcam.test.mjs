// The webcam, with Chromium's own fake cameras (two of them: a phone's front and rear): the live
// preview classifies, "Switch camera" moves to the other camera and it goes on, and holding
// "Hold to capture" on a class adds its frames as photos.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, screenshot } from "./browser.mjs";
import { card, counts, pageOpener, teach, trainAndWait } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);
const FAKE_CAMERAS = ["--use-fake-device-for-media-stream=device-count=2", "--use-fake-ui-for-media-stream"];

/** The camera `video` shows: its deviceId, once it plays. */
const cameraOf = (page, selector) =>
  page.waitForFunction((selector) => {
    const video = document.querySelector(selector);
    return video?.readyState >= 2 && video.srcObject?.getVideoTracks()[0]?.getSettings().deviceId;
  }, selector, { timeout: 30_000 }).then((handle) => handle.jsonValue());

test("the webcam: a live prediction, the other camera, frames held into a class", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false, args: FAKE_CAMERAS });
  const page = await openPage(context, "?device=cpu");
  assert.deepEqual(await teach(page, { hat: 3, shoes: 3 }), [3, 3]);
  assert.match(await trainAndWait(page), /^Trained/);

  await page.click("#preview-webcam");
  const first = await cameraOf(page, "#preview-video");
  const verdict = () => page.waitForFunction(() => /looks like|Not sure|none of these/i.test(document.querySelector("#verdict").textContent), null, { timeout: 60_000 });
  await verdict();
  await page.waitForSelector("#preview-switch:not([hidden])", { timeout: 10_000 });
  await page.click("#preview-switch");
  const second = await page.waitForFunction((first) => {
    const id = document.querySelector("#preview-video").srcObject?.getVideoTracks()[0]?.getSettings().deviceId;
    return id && id !== first && id;
  }, first, { timeout: 30_000 }).then((h) => h.jsonValue()).catch(() => assert.fail("Switch camera left the first camera on"));
  await page.evaluate(() => (document.querySelector("#verdict").textContent = ""));
  await verdict().catch(() => assert.fail("no live prediction from the second camera"));
  await screenshot(page, "webcam-preview");
  await page.click("#preview-webcam");
  assert.equal(await page.isVisible("#preview-video"), false, "the preview's webcam stopped");

  await card(page, 0).locator(".webcam").click();
  await cameraOf(page, ".class-card .class-video");
  const capture = card(page, 0).locator(".capture");
  await capture.dispatchEvent("pointerdown");
  await page.waitForTimeout(1200);
  await capture.dispatchEvent("pointerup");
  await page.waitForFunction(() => !/to go/.test(document.querySelector(".class-card .count").textContent), null, { timeout: 120_000 });
  const [held] = await counts(page);
  assert.ok(held > 3, `frames held into the class: ${held - 3}`);
  console.log(`# webcam: a live prediction from each of two cameras (${first.slice(0, 8)}…, ${second.slice(0, 8)}…); ${held - 3} frames held into a class`);
  await context.close();
});
