// Safari's engine for the tests: Debian's WebKitGTK MiniBrowser, driven by its own
// WebKitWebDriver (under xvfb-run: it needs a display) over the W3C WebDriver protocol. The few
// commands a smoke test needs are plain HTTP requests, written here rather than adding a
// client library of a hundred packages for them.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

export const WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver";
const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/** Why WebKit cannot run here, or null when it can. */
export const webkitMissing = () =>
  [WEBKIT_DRIVER, MINIBROWSER, "/usr/bin/xvfb-run"].find((f) => !existsSync(f)) ? "no WebKitWebDriver, MiniBrowser or xvfb-run (Debian: webkit2gtk-driver, xvfb)" : null;

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** A WebKit session: { script(source, ...args), scriptAsync(source, ...args), waitFor(source,
 * what, timeout), upload(selector, paths), url(address), screenshot(path), close() }. Its storage is ephemeral, as in
 * Safari's private windows. */
export async function webkitSession() {
  const port = await freePort();
  const driver = spawn("xvfb-run", ["-a", WEBKIT_DRIVER, `--port=${port}`], { stdio: "ignore", detached: true });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const response = await fetch(base + path, { method, headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const { value } = await response.json();
    if (value?.error) throw new Error(`WebDriver ${path}: ${value.error}: ${value.message}`);
    return value;
  };
  let id = null;
  for (let tries = 0; id === null; tries++) {
    try {
      ({ sessionId: id } = await call("POST", "/session", {
        capabilities: { alwaysMatch: { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } } },
      }));
    } catch (e) {
      if (tries > 50) throw e;
      await new Promise((r) => setTimeout(r, 200)); // the driver is starting
    }
  }
  const session = (path) => `/session/${id}${path}`;
  const script = (source, ...args) => call("POST", session("/execute/sync"), { script: source, args });
  return {
    script,
    url: (address) => call("POST", session("/url"), { url: address }),
    /** Run `source` (a function body) that ends by calling its last argument with the result. */
    scriptAsync: (source, ...args) => call("POST", session("/execute/async"), { script: source, args }),
    /** Poll `source` (a function body) until it returns a truthy value; that value. */
    async waitFor(source, what, timeout = 120_000) {
      const end = Date.now() + timeout;
      for (;;) {
        const value = await script(source).catch(() => null);
        if (value) return value;
        if (Date.now() > end) throw new Error(`waited ${timeout / 1000} s for ${what}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    /** Give a file input the files at `paths`, as a person choosing them does. */
    async upload(selector, paths) {
      const element = await call("POST", session("/element"), { using: "css selector", value: selector });
      await call("POST", session(`/element/${Object.values(element)[0]}/value`), { text: paths.join("\n") });
    },
    /** The window as a PNG file at `path`. */
    async screenshot(path) {
      writeFileSync(path, Buffer.from(await call("GET", session("/screenshot")), "base64"));
    },
    async close() {
      await call("DELETE", session("")).catch(() => {});
      try {
        process.kill(-driver.pid);
      } catch {}
    },
  };
}
