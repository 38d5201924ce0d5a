// Two tabs on one project: one edits, the others follow. The editing tab holds a Web Lock (one
// for each project: tabs on different projects each edit their own);
// a tab that cannot have it follows: it shows the project as the editing tab stores it
// (seam/database.js announces every write on a BroadcastChannel) and changes nothing, until the
// editing tab closes and the lock passes to it. Without Web Locks (old browsers) every tab
// edits, as before.
import { channelName, currentProject } from "../seam/database.js";

/** Resolves once this tab knows its part: onLead() now or later (when it gets the lock),
 * onFollow() now if another tab edits, onChanged() after another tab's writes. */
export function joinTabs({ onLead, onFollow, onChanged }) {
  if (typeof BroadcastChannel !== "undefined") {
    let timer = null;
    new BroadcastChannel(channelName()).onmessage = () => {
      clearTimeout(timer);
      timer = setTimeout(onChanged, 200);
    };
  }
  if (!navigator.locks) return Promise.resolve(onLead());
  const lock = `fewshot-project-editor:${currentProject()}`;
  const hold = () => new Promise(() => {}); // held until the tab closes
  return new Promise((decided) => {
    navigator.locks.request(lock, { ifAvailable: true }, (held) => {
      if (held) {
        decided(onLead());
        return hold();
      }
      decided(onFollow());
      navigator.locks.request(lock, () => {
        onLead();
        return hold();
      });
      return null;
    });
  });
}
