// The exported web app's service worker (page/webapp.js writes it into the ZIP as sw.js, after a
// first line that names every file of the app and their version: self.APP = { version,
// files }). It keeps all of them when the app is first opened and serves them from then on,
// cache first, so that the app opens and classifies with no server at all. A new export put
// in the same place is kept beside the old one and waits until the page says "update"
// (app.js offers a reload), so a page that runs is never given half of another version.
// Requests for anything else go on as if it were not here.
const { version, files } = self.APP;
const scope = self.registration.scope;
// Several apps may live on one origin (one folder each): each keeps its own caches.
const PREFIX = `fewshot-webapp ${scope} `;
const CACHE = PREFIX + version;
const kept = new Set(files.map((f) => new URL(f, scope).href));
const INDEX = new URL("index.html", scope).href;

self.addEventListener("install", (event) => {
  // "no-cache": revalidated with the server, never an older copy from the HTTP cache.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(files.map((f) => new Request(new URL(f, scope), { cache: "no-cache" })))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
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
  const key = request.mode === "navigate" && url.href === scope ? INDEX : url.href;
  if (!kept.has(key)) return;
  event.respondWith(
    caches
      .open(CACHE)
      .then((cache) => cache.match(key))
      .then((hit) => hit || fetch(request)),
  );
});
