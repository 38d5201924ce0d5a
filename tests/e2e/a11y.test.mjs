// Accessibility, measured by axe-core (npm) in Debian's headless Chromium, on every state of
// the page a person meets: empty, with photos, trained (figures, a confusion cell opened, the
// settings, the model card), a prediction ("None of these" and a class), bad input (a file
// that is not a photo, on a class and on "Try it"), and offline; and the exported web app,
// ready and with its answers. Each must have 0 violations.
// axe is given to the page through DevTools (page.evaluate), which the page's
// Content-Security-Policy does not govern: the page itself is audited as it is served. Two of
// what axe leaves "to review" count as violations too (audit, below).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { unzipSync } from "../../www/vendor/fflate.js";
import { startServer, launch, screenshot, shutDown, tempDir, SHARED, OUTPUT } from "./browser.mjs";
import { photosOf, pageOpener, card, nameClass, settled, trainAndWait, predictFile } from "./steps.mjs";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const { origin } = await startServer();
const openPage = pageOpener(origin);

/** axe's violations on the page as it is now: [{ state, id, impact, help, nodes }]. Some of
 * what axe leaves "to review" counts too: a contrast it measured below the rule's (it only
 * hedges because the text is short, such as a confusion-matrix cell's "4"), and an ARIA
 * attribute that the element's role does not allow (its name is then lost on screen readers). */
async function audit(page, state) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const { violations, incomplete } = await window.axe.run(document, { resultTypes: ["violations", "incomplete"] });
    const measuredLow = (check) => check.data?.contrastRatio > 0 && check.data.contrastRatio < parseFloat(check.data.expectedContrastRatio);
    const counted = (v) => (v.id === "color-contrast" ? v.nodes.filter((n) => n.any.some(measuredLow)) : v.id === "aria-prohibited-attr" ? v.nodes : []);
    const hedged = incomplete.map((v) => ({ ...v, nodes: counted(v), help: `${v.help} (axe: to review)` })).filter((v) => v.nodes.length);
    return [...violations, ...hedged].map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${(n.failureSummary || n.any.map((c) => c.message).join("; ")).replace(/\s+/g, " ")}`),
    }));
  });
  return violations.map((v) => ({ state, ...v }));
}

const report = (found) =>
  found.map((v) => `[${v.state}] ${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    ${n}`).join("\n")}`).join("\n");

test("axe-core: no accessibility violation in any state of the page", { timeout: 900_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  const page = await openPage(context);
  const found = [];
  const check = async (state, on = page) => {
    const violations = await audit(on, state);
    found.push(...violations);
    console.log(`# ${state}: ${violations.length} violation${violations.length === 1 ? "" : "s"}${violations.length ? ` (${violations.map((v) => v.id).join(", ")})` : ""}`);
  };

  await check("empty");

  await nameClass(page, 0, "hat");
  await nameClass(page, 1, "shoes");
  await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 4));
  await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 4));
  assert.deepEqual(await settled(page, [4, 4]), [4, 4]);
  await check("photos");

  await page.click("#advanced summary");
  assert.match(await trainAndWait(page), /^Trained/);
  await page.locator("#confusion .cell.diagonal").first().click();
  await page.waitForSelector("#inspect:not([hidden]) img");
  await check("trained");
  await screenshot(page, "a11y-trained");
  await page.click("#model-card");
  await page.waitForSelector("#card-dialog[open]");
  await check("model card");
  await page.click("#card-close");
  await page.waitForSelector("#card-dialog:not([open])", { state: "attached" });

  assert.match(await predictFile(page, join(SHARED, "fixtures/images/parrot.jpg")), /None of these/);
  await check("prediction: none of these");
  assert.match(await predictFile(page, photosOf("test", "shoes", 1)[0]), /This looks like “shoes”/);
  await check("prediction: a class");
  await screenshot(page, "a11y-prediction");

  // The exported web app, served on its own: ready, "None of these", a class.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-webapp")]);
  const appDir = tempDir("a11y-webapp");
  for (const [path, data] of Object.entries(unzipSync(readFileSync(await download.path())))) {
    mkdirSync(dirname(join(appDir, path)), { recursive: true });
    writeFileSync(join(appDir, path), data);
  }
  const app = await startServer({}, appDir);
  const appPage = await context.newPage();
  await appPage.goto(app.origin);
  await appPage.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 300_000 });
  await check("web app: ready", appPage);
  const appClassify = async (path) => {
    await appPage.$eval("#verdict", (v) => (v.textContent = ""));
    await appPage.setInputFiles("#file", path);
    await appPage.waitForFunction(() => /looks like|Not sure|none of these/i.test(document.querySelector("#verdict").textContent), null, { timeout: 120_000 });
    return appPage.textContent("#verdict");
  };
  assert.match(await appClassify(join(SHARED, "fixtures/images/parrot.jpg")), /^(Probably n|N)one of these/);
  await check("web app: none of these", appPage);
  await screenshot(appPage, "a11y-web-app-none-of-these");
  assert.match(await appClassify(photosOf("test", "shoes", 1)[0]), /This looks like “shoes”/);
  await check("web app: a class", appPage);
  await appPage.close();
  await shutDown(app.server);

  // A file that is not a photo, on a class and on "Try it": each says why.
  const text = join(OUTPUT, "a11y-notes.txt");
  writeFileSync(text, "not a photo");
  await card(page, 0).locator(".file-input").setInputFiles(text);
  await page.waitForFunction(() => document.querySelectorAll(".class-card .problems li").length > 0, null, { timeout: 60_000 });
  await page.setInputFiles("#preview-file", text);
  await page.waitForSelector("#preview-problem:not([hidden])", { timeout: 60_000 });
  await check("error");
  await screenshot(page, "a11y-error");

  // Offline: the page reopened from its service worker, with the model it had.
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => ["webgpu", "cpu", "error"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
  assert.deepEqual(await settled(page, [4, 4]), [4, 4]);
  await page.waitForSelector("#offline-status:not([hidden])", { timeout: 60_000 });
  await check("offline");
  await screenshot(page, "a11y-offline");
  await context.setOffline(false);

  assert.deepEqual(found, [], `axe-core's violations:\n${report(found)}`);
  await context.close();
});
