// The wasm engine in a real browser: loads the real weights, labels a real photo, on WebGPU
// (SwiftShader) and on the CPU (no WebGPU), and reports timings.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launch, echoConsole, SHARED } from "./browser.mjs";

const { server, origin } = await startServer();
after(() => server.close());

async function labelParrot({ webgpu, device }) {
  const { context } = await launch({ webgpu });
  try {
    const page = await context.newPage();
    echoConsole(page, device);
    const started = Date.now();
    await page.goto(`${origin}/?device=${device}`);
    await page.waitForSelector("body[data-ready]", { timeout: 300_000 });
    const loadSeconds = (Date.now() - started) / 1000;
    assert.equal(await page.getAttribute("body", "data-ready"), device === "webgpu" ? "webgpu" : "cpu",
      await page.textContent("#status"));
    const times = [];
    for (let i = 0; i < 3; i++) {
      await page.setInputFiles("#photo", join(SHARED, i % 2 ? "fixtures/images/cat.bmp" : "fixtures/images/parrot.jpg"));
      await page.waitForFunction(() => /Labelled in/.test(document.querySelector("#status").textContent), null, { timeout: 120_000 });
      const status = await page.textContent("#status");
      times.push(Number(status.match(/(\d+) ms/)[1]));
      const top = await page.textContent("#top5 li");
      assert.match(top, i % 2 ? /cat/ : /macaw/);
      await page.evaluate(() => (document.querySelector("#status").textContent = ""));
    }
    console.log(`# ${device}: ready after ${loadSeconds.toFixed(1)} s (incl. warm-up); photo ms: ${times.join(", ")}`);
  } finally {
    await context.close();
  }
}

test("labels a photo on WebGPU (SwiftShader)", { timeout: 600_000 }, () => labelParrot({ webgpu: true, device: "webgpu" }));
test("labels a photo on the CPU when WebGPU is missing", { timeout: 300_000 }, () => labelParrot({ webgpu: false, device: "auto" }));
