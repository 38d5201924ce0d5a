// The service worker: keeps the page, its scripts, the wasm engine and the weights on the first
// visit, and serves them from then on, so that Fewshot opens and works offline. An update (a
// new pkg/precache.js, written by build.sh whenever a file changes) is fetched in the
// background and waits until the page says "reload" (offline.js), so nothing is cut off
// midway. It answers only for the files it keeps; every other request goes on as if it were
// not here (and the page makes none to other origins).
importScripts("pkg/precache.js");

const { version, files } = self.PRECACHE;
const CACHE = `fewshot-app-${version}`;
const kept = new Set(files.map((f) => new URL(f, self.registration.scope).href));
const INDEX = new URL("index.html", self.registration.scope).href;

self.addEventListener("install", (event) => {
  // "no-cache": revalidated with the server (a 304 when the browser already has it).
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(files.map((f) => new Request(f, { cache: "no-cache" })))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith("fewshot-app-") && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "update") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  url.search = "";
  url.hash = "";
  const key = request.mode === "navigate" && url.href === self.registration.scope ? INDEX : url.href;
  if (!kept.has(key)) return;
  event.respondWith(
    caches
      .open(CACHE)
      .then((cache) => cache.match(key))
      .then((hit) => hit || fetch(request)),
  );
});
