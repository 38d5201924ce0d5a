// Two tabs on one project, in Debian's headless Chromium: one edits, the other follows what
// it stores and changes nothing, then takes over when the first closes. Nothing is lost,
// no deleted class comes back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { startServer, launch, screenshot } from "./browser.mjs";
import { photosOf, pageOpener, card, counts, settled } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);
const names = (page) => page.$$eval(".class-name", (els) => els.map((e) => e.value));

/** Wait until a tab shows these class names and photo counts, as its cards count them (not
 * by thumbnails: a grid draws them only near the screen, and a tab behind another may draw
 * none). */
async function shows(page, expectedNames, expectedCounts) {
  const end = Date.now() + 120_000;
  let shown;
  do {
    shown = [await names(page).catch(() => []), await counts(page).catch(() => [])];
    if (JSON.stringify(shown) === JSON.stringify([expectedNames, expectedCounts])) break;
    await new Promise((wake) => setTimeout(wake, 100));
  } while (Date.now() < end);
  return shown;
}

test("two tabs: one edits, the other follows, then takes over", { timeout: 600_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  try {
    const editor = await openPage(context, "?device=cpu");
    const follower = await openPage(context, "?device=cpu");
    assert.equal(await editor.getAttribute("body", "data-read-only"), "no");
    assert.equal(await follower.getAttribute("body", "data-read-only"), "yes");
    assert.match(await follower.textContent("#notice"), /open in another tab/);
    assert.equal(await follower.isDisabled("#train"), true);

    // The editor names, adds, deletes: the follower shows each change.
    await card(editor, 0).locator(".class-name").fill("hat");
    await card(editor, 1).locator(".class-name").fill("gone");
    await editor.click("#add-class");
    await card(editor, 2).locator(".class-name").fill("shoes");
    await card(editor, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 3));
    await card(editor, 2).locator(".file-input").setInputFiles(photosOf("train", "shoes", 2));
    assert.deepEqual(await settled(editor, [3, 0, 2]), [3, 0, 2]);
    assert.deepEqual(await shows(follower, ["hat", "gone", "shoes"], [3, 0, 2]), [["hat", "gone", "shoes"], [3, 0, 2]]);
    await card(editor, 1).locator(".delete-class").click();
    assert.deepEqual(await shows(follower, ["hat", "shoes"], [3, 2]), [["hat", "shoes"], [3, 2]]);
    await screenshot(follower, "tabs-follower");

    // The editor closes: the follower takes over, and what it changes stays after a reload.
    await editor.close();
    await follower.waitForFunction(() => document.body.dataset.readOnly === "no", null, { timeout: 30_000 });
    await card(follower, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 1, 5));
    assert.deepEqual(await settled(follower, [3, 3]), [3, 3]);
    await follower.reload();
    await follower.waitForFunction(() => ["cpu", "webgpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    assert.deepEqual(await shows(follower, ["hat", "shoes"], [3, 3]), [["hat", "shoes"], [3, 3]], "after a reload: nothing lost, the deleted class stays deleted");
    console.log("# two tabs: 5 changes followed, the second tab took over, 0 photos lost, 0 classes back from the dead");
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
