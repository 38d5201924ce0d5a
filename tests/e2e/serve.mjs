// A static file server for www/: the right MIME types (application/wasm), gzip where the
// browser accepts it, ETags so that a warm visit transfers almost nothing, and the page's
// Content-Security-Policy as a header on every file (so that the worker has it too), read from
// the <meta> of DIR/index.html: one policy, written once.
// Usage: node serve.mjs DIR PORT   (binds 127.0.0.1). Also imported by the tests.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { extname, join, normalize, resolve } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".wasm": "application/wasm",
  ".tflite": "application/octet-stream",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".bmp": "image/bmp",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
};
const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".wasm", ".svg", ".txt", ".md", ".tflite"]);

/** Serve `dir` on 127.0.0.1:`port` (0: any free port); `mounts` maps URL prefixes such as
 * "/bench/" to other folders (used by the benchmark only); `isolated` sends the headers that
 * make a page cross-origin isolated (shared memory, so threaded wasm such as tfjs-tflite's:
 * the benchmark measures both ways). */
export function serve(dir, port = 0, mounts = {}, { isolated = false } = {}) {
  const root = resolve(dir);
  const policy = contentSecurityPolicy(root);
  const cache = new Map(); // path -> { mtime, etag, body, gzipped }
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      const mount = Object.keys(mounts).find((prefix) => url.pathname.startsWith(prefix));
      const base = mount ? resolve(mounts[mount]) : root;
      const rest = mount ? url.pathname.slice(mount.length - 1) : url.pathname;
      let path = normalize(join(base, decodeURIComponent(rest)));
      if (!path.startsWith(base)) throw Object.assign(new Error("outside"), { code: "ENOENT" });
      let info = await stat(path);
      if (info.isDirectory()) {
        path = join(path, "index.html");
        info = await stat(path);
      }
      let entry = cache.get(path);
      if (!entry || entry.mtime !== info.mtimeMs) {
        const body = await readFile(path);
        const ext = extname(path);
        entry = {
          mtime: info.mtimeMs,
          etag: '"' + createHash("sha1").update(body).digest("hex") + '"',
          body,
          gzipped: COMPRESSIBLE.has(ext) ? gzipSync(body, { level: 9 }) : null,
          type: TYPES[ext] || "application/octet-stream",
        };
        cache.set(path, entry);
      }
      const headers = { "Content-Type": entry.type, ETag: entry.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" };
      if (policy && !mount) headers["Content-Security-Policy"] = policy;
      if (isolated) Object.assign(headers, { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" });
      if (req.headers["if-none-match"] === entry.etag) {
        res.writeHead(304, headers);
        return res.end();
      }
      const gzip = entry.gzipped && /\bgzip\b/.test(req.headers["accept-encoding"] || "");
      const body = gzip ? entry.gzipped : entry.body;
      if (gzip) headers["Content-Encoding"] = "gzip";
      headers["Content-Length"] = body.length;
      res.writeHead(200, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(e.code === "ENOENT" || e.code === "ENOTDIR" ? 404 : 500, { "Content-Type": "text/plain" });
      res.end(e.code === "ENOENT" ? "not found" : "server error");
    }
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok(server)));
}

/** The policy of the <meta http-equiv="Content-Security-Policy"> in root/index.html, if any. */
export function contentSecurityPolicy(root) {
  try {
    const html = readFileSync(join(root, "index.html"), "utf8");
    return html.match(/http-equiv="Content-Security-Policy"\s+content="([^"]+)"/)?.[1] ?? null;
  } catch {
    return null;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const [dir = "www", port = "8080"] = process.argv.slice(2);
  const server = await serve(dir, Number(port));
  console.log(`serving ${resolve(dir)} on http://127.0.0.1:${server.address().port}`);
}
