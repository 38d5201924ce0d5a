// Shared by the page tests and the benchmark: serve www/, launch Debian's headless Chromium
// (WebGPU on SwiftShader, or none), record every request, save screenshots.
import { after } from "node:test";
import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serve } from "./serve.mjs";

export const ROOT = resolve(new URL("../..", import.meta.url).pathname);
export const SHARED = resolve(ROOT, "../shared");
export const OUTPUT = join(ROOT, "target/test-output");
mkdirSync(OUTPUT, { recursive: true });

// Graphics on SwiftShader (a CPU emulation: this machine has no GPU), or with
// FEWSHOT_GPU=hardware (./build.sh bench-gpu) on the machine's own GPU through Vulkan.
const HARDWARE_GPU = process.env.FEWSHOT_GPU === "hardware";
const BASE_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  ...(HARDWARE_GPU ? [] : ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]),
];
const WEBGPU_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  ...(HARDWARE_GPU ? ["--use-angle=vulkan", "--ignore-gpu-blocklist"] : ["--use-vulkan=swiftshader"]),
];

// Whatever a test file opened is closed after it, passed or failed: a browser or a server
// left open would keep the test process alive, and the whole run waiting, for ever; a
// browser profile or unpacked app left behind fills the disk, run after run.
const openServers = new Set();
const openContexts = new Set();
const tempDirs = new Set();
after(async () => {
  await Promise.all([...openContexts].map((c) => c.close().catch(() => {})));
  await Promise.all([...openServers].map((s) => shutDown(s)));
  removeTempDirs();
});
// The benchmarks use this module outside the test runner, and may end with process.exit.
process.on("exit", removeTempDirs);

function removeTempDirs() {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** A new empty folder under the system's temporary one, removed after the test file. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `fewshot-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

/** Serve www/ (or another folder: `www`) on `port` (0: a free one): { server, origin }.
 * `options`: see serve.mjs (`isolated`). */
export async function startServer(mounts = {}, www = join(ROOT, "www"), port = 0, options = {}) {
  const server = await serve(www, port, mounts, options);
  openServers.add(server);
  server.on("close", () => openServers.delete(server));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/** Shut a server down now, open connections too: the origin is gone. */
export function shutDown(server) {
  server.closeAllConnections();
  return new Promise((ok) => (server.listening ? server.close(() => ok()) : ok()));
}

/** A fresh browser profile; webgpu: whether to enable WebGPU; args: more Chromium flags. */
export async function launch({ webgpu = true, userDataDir, args = [] } = {}) {
  const dir = userDataDir || tempDir("chromium");
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : []), ...args],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  openContexts.add(context);
  context.on("close", () => openContexts.delete(context));
  return { context, dir };
}

/** A private window: a context of a browser with no profile on disk (Chromium's off-the-record
 * context, as an incognito window), closed with the browser. CPU only. */
export async function launchPrivate({ args = [] } = {}) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: [...BASE_FLAGS, ...args] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  openContexts.add(context);
  context.on("close", () => {
    openContexts.delete(context);
    browser.close().catch(() => {});
  });
  return { context };
}

/** Record every request of a page (and its workers): [{ url, time }]. */
export function recordRequests(context) {
  const requests = [];
  context.on("request", (r) => requests.push({ url: r.url(), time: Date.now() }));
  return requests;
}

/** Log the page's console and errors, prefixed, for debugging failed runs. */
export function echoConsole(page, prefix = "page") {
  page.on("console", (m) => process.env.VERBOSE && console.log(`[${prefix}] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[${prefix} error] ${e.message}`));
}

export const screenshot = (page, name) => page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
