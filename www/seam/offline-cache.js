// A service worker's whole work, for the site (sw.js) and for each exported web app (the
// sw.js page/webapp.js writes), told first `self.OFFLINE = { prefix, version, files }`: it
// keeps every one of `files` when first installed and serves them from then on, cache first,
// so that the page opens and works with no network. A new version (another list, another
// version) is kept beside the old one and waits until the page says "update" (the site's
// offline.js, the app's app.js offer a reload), so that a page that runs is never given half
// of another version; the caches of older versions under the same prefix go once it takes
// over. Requests for anything else go on as if it were not here.
const { prefix, version, files } = self.OFFLINE;
const scope = self.registration.scope;
const CACHE = prefix + version;
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
