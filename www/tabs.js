// Two tabs on one project: one edits, the others follow. The editing tab holds a Web Lock;
// a tab that cannot have it follows: it shows the project as the editing tab stores it
// (store.js announces every write on a BroadcastChannel) and changes nothing, until the
// editing tab closes and the lock passes to it. Without Web Locks (old browsers) every tab
// edits, as before.
import { CHANNEL } from "./store.js";

const LOCK = "fewshot-project-editor";

/** Resolves once this tab knows its part: onLead() now or later (when it gets the lock),
 * onFollow() now if another tab edits, onChanged() after another tab's writes. */
export function joinTabs({ onLead, onFollow, onChanged }) {
  if (typeof BroadcastChannel !== "undefined") {
    let timer = null;
    new BroadcastChannel(CHANNEL).onmessage = () => {
      clearTimeout(timer);
      timer = setTimeout(onChanged, 200);
    };
  }
  if (!navigator.locks) return Promise.resolve(onLead());
  const hold = () => new Promise(() => {}); // held until the tab closes
  return new Promise((decided) => {
    navigator.locks.request(LOCK, { ifAvailable: true }, (lock) => {
      if (lock) {
        decided(onLead());
        return hold();
      }
      decided(onFollow());
      navigator.locks.request(LOCK, () => {
        onLead();
        return hold();
      });
      return null;
    });
  });
}
