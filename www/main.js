// Boot: bind the page's controls to the actions, open the project kept in this browser, and
// start the engine (on the device the address asks for, ?device=cpu|webgpu, else the best).
import * as actions from "./actions.js";
import { bind } from "./view.js";
import { update } from "./state.js";

bind(actions);
await actions.restore();
update({});
actions.startEngine(new URLSearchParams(location.search).get("device") || "auto");
