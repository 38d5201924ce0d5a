// Boot: have every update drawn (draw.js), bind the page's controls to the actions, choose the
// project (the one opened last of those kept in this browser), learn whether this tab edits or
// follows another on it (tabs.js), open it, keep the page for offline use,
// and start the engine (on the device the address asks for, ?device=cpu|webgpu, else the best).
import * as actions from "./actions.js";
import { bind } from "./events.js";
import { render } from "./draw.js";
import { update, onUpdate } from "./state.js";
import { startOffline } from "./offline.js";

onUpdate(render);
bind(actions);
// Ask the browser not to evict the project when space runs low (granted or not, it works).
navigator.storage?.persist?.().catch(() => {});
await actions.chooseProject();
await actions.joinTabs();
await actions.restore();
update({});
startOffline(actions.offline);
// The engine starts once the photos' images are read: started at once (compiling the wasm
// module, reading every embedding), it held a 10,000-photo project's thumbnails back by 1 s.
await actions.imagesRead();
actions.startEngine(new URLSearchParams(location.search).get("device") || "auto");
