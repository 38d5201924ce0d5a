// The projects kept in this browser, in Debian's headless Chromium: a new one, renamed,
// duplicated (photos, model and all), switched between, and deleted; each as it was after a
// reload.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, screenshot } from "./browser.mjs";
import { pageOpener, settled, teach, trainAndWait } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);

const listed = (page) => page.$$eval("#project-select option", (os) => os.map((o) => (o.selected ? `[${o.textContent}]` : o.textContent)));
const engineReady = (page) => page.waitForFunction(() => ["cpu", "webgpu"].includes(document.body.dataset.engine), null, { timeout: 120_000 });
/** Do something that makes the page reload into a project, and wait until it is ready. */
async function reloadsInto(page, action) {
  await Promise.all([page.waitForEvent("load", { timeout: 60_000 }), action()]);
  await engineReady(page);
}

test("projects: new, renamed, duplicated with its model, switched, deleted", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  try {
    const page = await openPage(context, "?device=cpu");
    page.on("dialog", (d) => d.accept(d.type() === "prompt" ? "Screws" : undefined));
    assert.deepEqual(await teach(page, { hat: 3, shoes: 3 }), [3, 3]);
    await trainAndWait(page);

    await page.click("#rename-project");
    await page.waitForFunction(() => document.querySelector("#project-select").selectedOptions[0]?.textContent === "Screws");
    await reloadsInto(page, () => page.click("#duplicate-project"));
    assert.deepEqual(await listed(page), ["Screws", "[Screws (copy)]"]);
    assert.deepEqual(await settled(page, [3, 3]), [3, 3], "the copy's photos");
    await page.waitForFunction(() => !document.querySelector("#export-model").disabled, null, { timeout: 30_000 });

    await reloadsInto(page, () => page.click("#new-project"));
    assert.deepEqual(await listed(page), ["Screws", "Screws (copy)", "[Project 3]"]);
    assert.deepEqual(await settled(page, [0, 0]), [0, 0], "a new project starts empty");
    assert.equal(await page.isDisabled("#export-model"), true);

    await reloadsInto(page, () => page.selectOption("#project-select", { label: "Screws" }));
    assert.deepEqual(await settled(page, [3, 3]), [3, 3], "the first, as it was");
    await page.waitForFunction(() => !document.querySelector("#export-model").disabled, null, { timeout: 30_000 });

    // Delete the copy: open it, delete it (confirmed), and the page goes on in another.
    await reloadsInto(page, () => page.selectOption("#project-select", { label: "Screws (copy)" }));
    await reloadsInto(page, () => page.click("#delete-project"));
    assert.deepEqual((await listed(page)).map((n) => n.replace(/[[\]]/g, "")), ["Screws", "Project 3"]);
    assert.match(await page.textContent("#notice"), /"Screws \(copy\)" was deleted/);
    await page.reload();
    await engineReady(page);
    assert.deepEqual((await listed(page)).map((n) => n.replace(/[[\]]/g, "")), ["Screws", "Project 3"], "after a reload");
    await screenshot(page, "projects");
    console.log("# projects: renamed, duplicated with photos and model, a new one, switched, deleted; the list the same after a reload");
  } finally {
    await context.close();
  }
});
