// The site's service worker: keeps the page, its scripts, the wasm engine and the weights on
// the first visit, and serves them from then on, so that Fewshot opens and works offline
// (seam/offline-cache.js, the same work as an exported web app's). An update (a new
// pkg/precache.js, written by build.sh whenever a file changes) is fetched in the background
// and waits until the page says "reload" (page/offline.js), so nothing is cut off midway.
importScripts("pkg/precache.js");
self.OFFLINE = { prefix: "fewshot-app-", ...self.PRECACHE };
importScripts("seam/offline-cache.js");
