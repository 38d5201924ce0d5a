// Faults the page must survive, for real, in Debian's headless Chromium: the GPU process
// killed by its pid while photos are embedded on WebGPU, the engine's worker ending in the
// middle of training (silently, with an error, stuck in a loop) and how soon the page notices,
// a busy engine never taken for dead, a helper worker of the pool ending while photos are
// embedded, and the page reloaded in the middle of opening a project and of adding a folder.
// Each states what must survive and checks it after the fault.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { zipSync } from "../../www/vendor/fflate.js";
import { startServer, launch, screenshot, tempDir } from "./browser.mjs";
import { photosOf, pageOpener, card, settled, trainAndWait, storedRecords, predictFile } from "./steps.mjs";

const { origin } = await startServer();
const openPage = pageOpener(origin);

/** Pids of the GPU processes of the Chromium whose profile is `dir`. */
function gpuProcesses(dir) {
  const rows = execFileSync("ps", ["-eo", "pid,ppid,args"]).toString().split("\n").slice(1);
  const procs = rows.filter(Boolean).map((r) => {
    const [, pid, ppid, args] = r.match(/^\s*(\d+)\s+(\d+)\s+(.*)$/);
    return { pid: Number(pid), ppid: Number(ppid), args };
  });
  // The GPU process is a child of one of this profile's processes (a zygote, here).
  const ours = new Set(procs.filter((p) => p.args.includes(`--user-data-dir=${dir}`)).map((p) => p.pid));
  return procs.filter((p) => ours.has(p.ppid) && p.args.includes("--type=gpu-process")).map((p) => p.pid);
}

test("the GPU process killed while embedding on WebGPU: said, carried on, nothing lost", { timeout: 900_000 }, async () => {
  const { context, dir } = await launch({ webgpu: true });
  try {
    const page = await openPage(context, "?device=webgpu");
    assert.equal(await page.getAttribute("body", "data-engine"), "webgpu");
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 4));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 4));
    // Once the first photo is in, kill the GPU process mid-way through the others.
    await page.waitForFunction(() => document.querySelectorAll(".thumb:not(.busy)").length >= 1, null, { timeout: 300_000 });
    const pids = gpuProcesses(dir);
    assert.ok(pids.length >= 1, "a GPU process to kill");
    const killedAt = Date.now();
    for (const pid of pids) process.kill(pid, "SIGKILL");
    // The page says so and carries on; every photo is embedded in the end.
    await page.waitForFunction(() => /The GPU stopped working/.test(document.querySelector("#notice").textContent), null, { timeout: 120_000 });
    const notice = await page.textContent("#notice");
    const seconds = (Date.now() - killedAt) / 1000;
    assert.deepEqual(await settled(page, [4, 4]), [4, 4], "every photo, after the GPU process died");
    await screenshot(page, "fault-gpu-killed");
    const engine = await page.getAttribute("body", "data-engine");
    await page.reload();
    await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [4, 4]), [4, 4], "every photo, after a reload");
    console.log(`# GPU process killed (pids ${pids}): said after ${seconds.toFixed(1)} s ("${notice}"), carried on on ${engine}, 8 of 8 photos kept`);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the engine's worker ending mid-training: noticed at once, or within 5 s when nothing says so; restarted, nothing lost", { timeout: 600_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  try {
    // A switch for the last case: the page is not told of its worker's end by the Web Lock the
    // worker holds (as on plain http away from localhost, where there are no Web Locks), and
    // must find it by its pings. Tabs keep their own lock (tabs.js).
    await context.addInitScript(() => {
      const request = LockManager.prototype.request;
      LockManager.prototype.request = function (name, ...rest) {
        if (self.fewshotNoLife && String(name).startsWith("fewshot worker ")) return new Promise(() => {});
        return request.call(this, name, ...rest);
      };
    });
    const page = await openPage(context, "?device=cpu");
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 6));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 6));
    assert.deepEqual(await settled(page, [6, 6]), [6, 6]);
    // A wide hidden layer: training lasts long enough to be interrupted.
    await page.click("#advanced summary");
    await page.fill("#setting-hiddenUnits", "512");
    await page.dispatchEvent("#setting-hiddenUnits", "change");

    const figures = [];
    // The ways a worker ends, and how soon the page must say so (from the end to the notice):
    // it closes with no event at all (as when the browser ends it), which the browser says
    // by giving up the worker's Web Lock; an uncaught error, an event; stuck in a loop, alive
    // but silent, found by the page's pings (SILENT_CPU_MS); and closed with no Web Lock to
    // say so, found by the pings too.
    for (const [how, end, within, noLifeAfter] of [
      ["closed silently", () => [performance.timeOrigin + performance.now(), self.close()][0], 2, false],
      ["uncaught error", () => [performance.timeOrigin + performance.now(), setTimeout(() => { throw new Error("simulated crash"); })][0], 2, false],
      // The worker started after this one gets no Web Lock to tell its end (its lock was
      // asked for already: the switch does not change how this one is found).
      ["stuck in a loop", () => [performance.timeOrigin + performance.now(), setTimeout(() => { for (;;); })][0], 5, true],
      ["closed silently, no Web Lock", () => [performance.timeOrigin + performance.now(), self.close()][0], 5, false],
    ]) {
      if (noLifeAfter) await page.evaluate(() => (self.fewshotNoLife = true));
      await page.click("#train");
      await page.waitForSelector("#stop:not([hidden])", { timeout: 60_000 });
      const seconds = await workerEnded(page, end, 30);
      assert.ok(seconds <= within, `the worker ${how}: said after ${seconds.toFixed(2)} s, more than ${within} s`);
      await page.waitForFunction(() => /Training was interrupted/.test(document.querySelector("#train-status").textContent), null, { timeout: 10_000 })
        .catch(async () => assert.fail(`the training status after the worker ${how}: "${await page.textContent("#train-status")}"`));
      await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 120_000 })
        .catch(async () => assert.fail(`the engine after the worker ${how}: ${await page.getAttribute("body", "data-engine")}, "${await page.textContent("#engine-status")}"`));
      assert.deepEqual(await settled(page, [6, 6]), [6, 6], `every photo, after the worker ${how}`);
      figures.push(`${how}: said after ${seconds.toFixed(2)} s`);
    }
    await screenshot(page, "fault-worker-ended");
    assert.match(await trainAndWait(page), /^Trained/, "training after four restarts");
    console.log(`# worker ended mid-training: ${figures.join("; ")}; engine restarted each time, 12 of 12 photos kept, trained after`);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** End the engine's own worker (not its helpers, pool.js) by `end`, run inside it (it returns
 * when, on the clock pages and workers share); the seconds until the page noticed: its engine
 * left "ready on the CPU" to start again (the notice is not watched: it is drawn again from the
 * page's state on any change, the previous restart's words with it). At most `limit` s. */
async function workerEnded(page, end, limit) {
  await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 120_000 });
  const workers = [];
  for (const w of page.workers()) {
    if (w.url().endsWith("/worker.js") && (await w.evaluate(() => self.name).catch(() => "")) === "fewshot engine") workers.push(w);
  }
  assert.equal(workers.length, 1, "one engine worker");
  const noticed = page.evaluate(
    (limit) =>
      new Promise((resolve) => {
        const observer = new MutationObserver(() => {
          if (document.body.dataset.engine === "cpu") return;
          observer.disconnect();
          resolve(performance.timeOrigin + performance.now());
        });
        observer.observe(document.body, { attributes: true, attributeFilter: ["data-engine"] });
        setTimeout(() => resolve(null), limit * 1000);
      }),
    limit,
  );
  const before = await page.evaluate(() => performance.timeOrigin + performance.now());
  // A worker that closes may not answer: then the time before asking it is the end.
  const endedAt = (await workers[0].evaluate(end).catch(() => null)) ?? before;
  const at = await noticed;
  assert.ok(at !== null, `the page did not notice within ${limit} s`);
  await page.waitForFunction(() => /The engine stopped unexpectedly/.test(document.querySelector("#notice").textContent), null, { timeout: 10_000 });
  return (at - endedAt) / 1000;
}

test("a busy engine is never taken for dead: the longest its workers go without a turn, measured", { timeout: 1_200_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  // Every worker (the engine's and its helpers) keeps, from its start, the longest it went
  // without running a task: no ping could have been answered for that long.
  const workers = [];
  context.on("page", (page) =>
    page.on("worker", (worker) => {
      const entry = { worker, name: "", closed: false };
      workers.push(entry);
      worker.on("close", () => (entry.closed = true));
      worker
        .evaluate(() => {
          let last = performance.now();
          self.longestGap = 0;
          setInterval(() => {
            const now = performance.now();
            self.longestGap = Math.max(self.longestGap, now - last);
            last = now;
          }, 20);
          return self.name;
        })
        .then((name) => (entry.name = name), () => {});
    }),
  );
  const phases = [];
  /** The longest gap of each live worker since the last phase (then zero again); no restart. */
  const phase = async (what, page) => {
    const gaps = [];
    for (const entry of workers.filter((w) => !w.closed)) {
      const gap = await entry.worker.evaluate(() => [self.longestGap, (self.longestGap = 0)][0]).catch(() => 0);
      gaps.push([gap, entry.name]);
    }
    const [longest, by] = gaps.sort((a, b) => b[0] - a[0])[0];
    assert.doesNotMatch(await page.textContent("#notice"), /stopped unexpectedly/, `the engine restarted while ${what}`);
    const ended = workers.filter((w) => w.closed).map((w) => w.name);
    assert.deepEqual(ended, [], `workers taken for dead while ${what}`);
    phases.push(`${what}: ${longest.toFixed(0)} ms (${by})`);
  };
  // Two classes of photos of five kinds each; the largest hidden layer, so that every step of
  // training is as long as it gets for this many photos.
  const count = Number(process.env.FEWSHOT_BUSY_PHOTOS || 40);
  const labels = ["hat", "shoes", "dress", "pants", "shirt", "skirt", "shorts", "outwear", "longsleeve", "t-shirt"];
  const of = (from) => labels.slice(from, from + 5).flatMap((label) => photosOf("train", label, 30)).slice(0, count);
  try {
    const page = await openPage(context, "?device=cpu");
    const note = await page.getAttribute("#engine-status", "title");
    await card(page, 0).locator(".class-name").fill("some");
    await card(page, 1).locator(".class-name").fill("others");
    let started = Date.now();
    await card(page, 0).locator(".file-input").setInputFiles(of(0));
    await card(page, 1).locator(".file-input").setInputFiles(of(5));
    assert.deepEqual(await settled(page, [count, count], 900_000), [count, count]);
    await phase(`adding ${2 * count} photos in ${((Date.now() - started) / 1000).toFixed(0)} s`, page);
    await page.click("#advanced summary");
    await page.fill("#setting-hiddenUnits", "1024");
    await page.dispatchEvent("#setting-hiddenUnits", "change");
    started = Date.now();
    assert.match(await trainAndWait(page), /^Trained/);
    await phase(`training and checking them with 1,024 hidden units in ${((Date.now() - started) / 1000).toFixed(0)} s`, page);
    await predictFile(page, photosOf("test", "hat", 1)[0]);
    await predictFile(page, photosOf("test", "shoes", 1)[0]);
    await Promise.all([page.waitForEvent("download", { timeout: 120_000 }), page.click("#export-tflite")]);
    await phase("predicting, exporting TFLite", page);
    workers.length = 0; // the reload ends them all
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.engine === "cpu", null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [count, count]), [count, count]);
    await phase("reloading", page);
    console.log(`# busy engine (${note}): the longest a worker went without a turn: ${phases.join("; ")}; none taken for dead`);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a helper worker of the pool ending while photos are embedded: no photo lost, no restart", { timeout: 600_000 }, async () => {
  const { context } = await launch({ webgpu: false });
  try {
    const page = await openPage(context, "?device=cpu");
    const engines = await page.evaluate(() => navigator.hardwareConcurrency);
    if (engines < 2) return void console.log("# SKIPPED: one core reported, so no helper workers");
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    const helperStarted = page.waitForEvent("worker", { predicate: async (w) => (await w.evaluate(() => self.name).catch(() => "")).startsWith("fewshot helper"), timeout: 120_000 });
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 8));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 8));
    const helper = await helperStarted;
    // Once it has embedded a photo, it ends without a word (as when the browser ends it).
    await page.waitForFunction(() => document.querySelectorAll(".thumb:not(.busy)").length >= 3, null, { timeout: 300_000 });
    const endedAt = Date.now();
    await helper.evaluate(() => self.close());
    assert.deepEqual(await settled(page, [8, 8]), [8, 8], "every photo, with the helper gone");
    const seconds = (Date.now() - endedAt) / 1000;
    assert.doesNotMatch(await page.textContent("#notice"), /stopped unexpectedly/, "the engine itself was not restarted");
    assert.equal(await page.getAttribute("body", "data-engine"), "cpu");
    assert.match(await trainAndWait(page), /^Trained/, "training with one engine fewer");
    console.log(`# helper worker ended while embedding: all 16 photos in ${seconds.toFixed(1)} s after, no restart, trained after`);
  } finally {
    await context.close();
  }
});

test("a reload in the middle of opening a project keeps one whole project, the old or the new", { timeout: 600_000 }, async () => {
  // A data set ZIP of three folders of 10 photos, made here.
  const folders = ["pants", "shirt", "skirt"];
  const entries = {};
  for (const label of folders) {
    for (const path of photosOf("train", label, 10)) entries[`${label}/${basename(path)}`] = new Uint8Array(readFileSync(path));
  }
  const zipPath = join(tempDir("open"), "clothes.zip");
  writeFileSync(zipPath, zipSync(entries, { level: 0 }));

  const { context, dir } = await launch({ webgpu: false });
  try {
    const page = await openPage(context, "?device=cpu");
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 3));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 3));
    assert.deepEqual(await settled(page, [3, 3]), [3, 3]);
    const [saved] = await Promise.all([page.waitForEvent("download"), page.click("#save-project")]);
    const oldZip = join(dirname(zipPath), "old.zip");
    await saved.saveAs(oldZip);
    const whole = { "hat,shoes": [3, 3], "pants,shirt,skirt": [10, 10, 10] };
    const seen = [];
    let names = "hat,shoes";
    // Reloads at several moments of opening the other project, timed inside the page (a
    // round trip from here would land after it): before, during and after it is written.
    const zips = { new: readFileSync(zipPath).toString("base64"), old: readFileSync(oldZip).toString("base64") };
    for (const delay of [0, 10, 15, 20, 25, 30, 40, 80, 300]) {
      const zip = names === "hat,shoes" ? zips.new : zips.old;
      await Promise.all([
        page.waitForEvent("load", { timeout: 60_000 }),
        page.evaluate(
          ({ zip, delay }) => {
            const input = document.querySelector("#open-project");
            const files = new DataTransfer();
            files.items.add(new File([Uint8Array.from(atob(zip), (c) => c.charCodeAt(0))], "project.zip", { type: "application/zip" }));
            input.files = files.files;
            input.dispatchEvent(new Event("change", { bubbles: true }));
            setTimeout(() => location.reload(), delay);
          },
          { zip, delay },
        ),
      ]);
      await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
      const before = names;
      names = (await page.$$eval(".class-name", (els) => els.map((e) => e.value))).join(",");
      assert.ok(names in whole, `after a reload ${delay} ms into opening, the classes are "${names}": neither project whole`);
      const counts = await settled(page, whole[names]);
      assert.deepEqual(counts, whole[names], `after a reload ${delay} ms into opening, "${names}" is not whole`);
      const stored = await storedRecords(page);
      const total = counts.reduce((a, b) => a + b, 0);
      assert.equal(stored.photos.length, total, "photo records, one per photo shown");
      assert.equal(stored.photos.filter((p) => p.pending).length, 0, "none left half-read");
      assert.equal(stored.embeddings.length, total, "embeddings, one per photo shown");
      seen.push(`${delay} ms: ${names === before ? "as it was" : "opened"}`);
    }
    console.log(`# reload while opening a project, 9 times (${seen.join(", ")}): always one whole project, 0 orphans`);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dirname(zipPath), { recursive: true, force: true });
  }
});

test("a reload in the middle of adding photos loses none, and leaves no orphans", { timeout: 600_000 }, async () => {
  const { context, dir } = await launch({ webgpu: false });
  try {
    const page = await openPage(context, "?device=cpu");
    await card(page, 0).locator(".class-name").fill("hat");
    await card(page, 1).locator(".class-name").fill("shoes");
    await card(page, 0).locator(".file-input").setInputFiles(photosOf("train", "hat", 12));
    await card(page, 1).locator(".file-input").setInputFiles(photosOf("train", "shoes", 12));
    await page.waitForFunction(() => document.querySelectorAll(".thumb:not(.busy)").length >= 3, null, { timeout: 300_000 });
    const readBeforeReload = await page.$$eval(".thumb:not(.busy)", (t) => t.length);
    await page.reload();
    await page.waitForFunction(() => ["webgpu", "cpu"].includes(document.body.dataset.engine), null, { timeout: 300_000 });
    assert.deepEqual(await settled(page, [12, 12]), [12, 12], "every photo given before the reload");
    // No record without its class, none twice: what is stored is exactly what is shown.
    const stored = await storedRecords(page);
    const shown = await page.$$eval(".thumb", (t) => t.map((x) => x.dataset.photoId).sort());
    assert.deepEqual(stored.photos.map((p) => p.id).sort(), shown);
    assert.equal(stored.photos.filter((p) => p.pending).length, 0, "none left half-read");
    assert.deepEqual([...stored.embeddings].sort(), shown, "embeddings of exactly these photos");
    console.log(`# reload while adding 24 photos (${readBeforeReload} read before it): 24 of 24 there after, 0 orphans`);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
