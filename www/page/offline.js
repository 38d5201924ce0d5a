// Offline and installable: registers the service worker (sw.js), says when an update is
// ready (onUpdate(apply): apply() reloads into it), and when the browser offers to install
// the page as an app (onInstallable(install)). Without service workers (an old browser, a
// file:// page) the page works as before, online.

// The browser's offer to install can come before the page has opened its project and called
// startOffline (it needs no service worker to be offered): heard from the start and kept.
let installOffer = null;
let showInstallOffer = null;
window.addEventListener("beforeinstallprompt", (event) => {
  event.preventDefault();
  installOffer = event;
  showInstallOffer?.();
});

export function startOffline({ onUpdate, onInstallable, onReady }) {
  showInstallOffer = () =>
    onInstallable(async () => {
      const event = installOffer;
      installOffer = null;
      event.prompt();
      await event.userChoice;
      onInstallable(null);
    });
  if (installOffer) showInstallOffer();
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (reloading) location.reload();
  });
  navigator.serviceWorker
    .register("sw.js")
    .then((registration) => {
      const offer = () => {
        const waiting = registration.waiting;
        // The first install is not an update: nothing is running an older version.
        if (!waiting || !navigator.serviceWorker.controller) return;
        onUpdate(() => {
          reloading = true;
          waiting.postMessage("update");
        });
      };
      offer();
      registration.addEventListener("updatefound", () => {
        const installing = registration.installing;
        installing?.addEventListener("statechange", () => installing.state === "installed" && offer());
      });
      return navigator.serviceWorker.ready;
    })
    .then(() => onReady())
    .catch(() => {}); // offline use is a bonus: the page works without it
}
