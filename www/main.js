// Boot: bind the page's controls to the actions, open the project kept in this browser, and
// keep it for offline use, and start the engine (on the device the address asks for, ?device=cpu|webgpu, else the best).
import * as actions from "./actions.js";
import { bind } from "./view.js";
import { update } from "./state.js";
import { startOffline } from "./offline.js";

bind(actions);
await actions.restore();
update({});
startOffline(actions.offline);
actions.startEngine(new URLSearchParams(location.search).get("device") || "auto");
