//! The JavaScript API, and the only file that mentions `wasm_bindgen`: two classes, each
//! method converting its arguments, delegating to [`crate::engine`] or [`crate::project`] and
//! converting the result back. Errors reject as JS `Error`s whose `kind` property is
//! [`crate::error::ErrorKind::as_str`] ("bad-input", "stopped", "gpu-lost", "storage",
//! "internal"). JavaScript never passes an embedding size or a preprocessing recipe: the
//! project knows them.
//!
//! ```js
//! import init, { Backbone, Project } from "./pkg/fewshot.js";
//! await init();
//! const backbone = await Backbone.create(weightBytes, "auto");   // "webgpu" | "cpu" | "auto"
//! const project = new Project();
//! project.setClasses([{ id: "a", name: "cat", photos: ["p1"] }, { id: "b", name: "dog", photos: ["p2"] }]);
//! await project.addPhoto(backbone, "p1", imageData.data, imageData.width, imageData.height);
//! // … the same for p2 …
//! const report = await project.learn(backbone, (progress) => {});   // { model, summary, … }
//! await project.classify(backbone, pixels, width, height);          // { predictions, unfamiliar, heatmap }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Float32Array, Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::backbone::imagenet_labels;
use crate::device;
use crate::engine::Engine;
use crate::error::Error;
use crate::predict::top_k;
use crate::preprocess::{views_from_key, views_key, View, Rgba};
use crate::project::{ClassSpec, Project as LearningState};
use crate::settings::Settings;

// The linker's function that runs static constructors (cubecl registers its operations with
// `inventory`). While no code calls it, wasm-ld calls it at the top of every exported
// function: a profile gave it 12-15 % of each photo's embedding time. Called once, here.
unsafe extern "C" {
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
fn start() {
    // SAFETY: the linker's own constructor list, run once, when wasm-bindgen's glue starts the
    // instance and before anything else is called.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

/// A JS `Error` with the message and a `kind` property.
fn js_error(e: Error) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    let _ = Reflect::set(&error, &"kind".into(), &e.kind().as_str().into());
    error.into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(Error::Internal(e.to_string())))
}

/// A value from JavaScript; `undefined` or `null` give the defaults, unknown keys are refused.
fn from_js<T: serde::de::DeserializeOwned + Default>(value: JsValue) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(Error::BadConfig(e.to_string())))
}

/// Resolve after the event loop has had a turn, so that the worker can handle messages
/// (a stop request) between steps. A `MessageChannel` message is a task of its own, like
/// `setTimeout(0)`, without the browser's minimum timer delay (up to 4 ms a call).
async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _| match web_sys::MessageChannel::new() {
        Ok(channel) => {
            channel.port1().set_onmessage(Some(&resolve));
            let _ = channel.port2().post_message(&JsValue::NULL);
        }
        Err(_) => {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A WebGPU adapter, if the browser offers one: `Some(is_fallback)`.
async fn webgpu_adapter() -> Option<bool> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok().filter(|g| !g.is_undefined() && !g.is_null())?;
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(request.call0(&gpu).ok()?.dyn_into::<Promise>().ok()?).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let flag = |obj: &JsValue| Reflect::get(obj, &"isFallbackAdapter".into()).ok().and_then(|v| v.as_bool());
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    Some(flag(&info).or_else(|| flag(&adapter)).unwrap_or(false))
}

/// The backbone loaded on WebGPU or the CPU.
#[wasm_bindgen]
pub struct Backbone {
    engine: Rc<Engine>,
    /// The backbone file, for the standalone export ([`Project::export_tflite`]).
    weights: Vec<u8>,
    device: String,
    device_note: String,
}

#[wasm_bindgen]
impl Backbone {
    /// Load the backbone from the bytes of `mobilenet_v2_1.0_224_quant.tflite`.
    /// `device`: "auto" (default: WebGPU on a hardware adapter, else the CPU), "webgpu" or "cpu".
    pub fn create(weights: Vec<u8>, device: Option<String>) -> Promise {
        future_to_promise(async move { Ok(Backbone::load(weights, device).await?.into()) })
    }

    /// The embeddings (`Float32Array` of count x 1280) of `count` photos of the same size,
    /// their RGBA pixels one after the other, seen as the defaults see them (centre crop), in
    /// one backbone call: for research and benchmarks; a project embeds with `addPhoto`.
    pub fn embed(&self, rgba: Vec<u8>, count: u32, width: u32, height: u32) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let size = Rgba::byte_len(width, height).map_err(js_error)?;
            if count == 0 || rgba.len() != size.saturating_mul(count as usize) {
                return Err(js_error(Error::BadPixels { width, height, got: rgba.len() / count.max(1) as usize }));
            }
            let photos = rgba
                .chunks_exact(size)
                .map(|pixels| Ok(View::default().apply(Rgba::new(pixels, width, height)?)))
                .collect::<crate::Result<Vec<_>>>()
                .map_err(js_error)?;
            let embeddings = engine.embed(&photos).await.map_err(js_error)?;
            Ok(Float32Array::from(embeddings.as_slice()).into())
        })
    }

    /// The embeddings (`Float32Array` of views x 1280) of one photo's RGBA pixels in each of
    /// `views` (a project's `viewsKey`), in one backbone call: what a project's `addPhoto`
    /// computes, for a worker that embeds without holding the project.
    #[wasm_bindgen(js_name = embedViews)]
    pub fn embed_views(&self, views: String, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let views = views_from_key(&views).map_err(js_error)?;
            let embeddings = engine.embed(&preprocessed(&rgba, width, height, &views)?).await.map_err(js_error)?;
            Ok(Float32Array::from(embeddings.as_slice()).into())
        })
    }

    /// The backbone's own ImageNet top-5 for RGBA pixels: `[{ label, class, probability }]`.
    pub fn imagenet(&self, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let photo = View::default().apply(Rgba::new(&rgba, width, height).map_err(js_error)?);
            let probabilities = engine.imagenet(&[photo]).await.map_err(js_error)?;
            to_js(&top_k(&probabilities, &imagenet_labels(), 5))
        })
    }
}

impl Backbone {
    async fn load(weights: Vec<u8>, device: Option<String>) -> Result<Backbone, JsValue> {
        let wanted = device.unwrap_or_else(|| "auto".into());
        let (burn_device, name, note) = match wanted.as_str() {
            "cpu" => (device::cpu(), "cpu", "CPU chosen".to_string()),
            "webgpu" => (device::gpu().await.map_err(js_error)?, "webgpu", "WebGPU chosen".to_string()),
            "auto" => match webgpu_adapter().await {
                Some(false) => match device::gpu().await {
                    Ok(d) => (d, "webgpu", "WebGPU adapter found".to_string()),
                    Err(e) => (device::cpu(), "cpu", format!("WebGPU failed ({e}); running on the CPU")),
                },
                Some(true) => (
                    device::cpu(),
                    "cpu",
                    "the only WebGPU adapter emulates a GPU in software, on this processor: the CPU path runs here instead".to_string(),
                ),
                None => (device::cpu(), "cpu", "this browser offers no WebGPU adapter".to_string()),
            },
            other => return Err(js_error(Error::BadConfig(format!("device must be auto, webgpu or cpu, not \"{other}\"")))),
        };
        let engine = Engine::new(&weights, burn_device).map_err(js_error)?;
        engine.warm_up().await.map_err(js_error)?;
        Ok(Backbone { engine: Rc::new(engine), weights, device: name.into(), device_note: note })
    }
}

#[wasm_bindgen]
impl Backbone {
    /// The smallest width or height of a photo the engine accepts, in pixels.
    #[wasm_bindgen(js_name = minImageSide)]
    pub fn min_image_side() -> u32 {
        crate::preprocess::MIN_SIDE
    }

    /// sha256 of the published weights file, hex: what a download must match.
    #[wasm_bindgen(js_name = knownWeightsSha256)]
    pub fn known_weights_sha256() -> String {
        crate::backbone::KNOWN_SHA256.to_string()
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        self.device.clone()
    }

    /// Why that device, in words.
    #[wasm_bindgen(getter, js_name = deviceNote)]
    pub fn device_note(&self) -> String {
        self.device_note.clone()
    }

    /// sha256 of the weights, hex.
    #[wasm_bindgen(getter, js_name = weightsSha256)]
    pub fn weights_sha256(&self) -> String {
        self.engine.weights_sha256.clone()
    }

    /// A warning when the weights are not the published file, else `undefined`.
    #[wasm_bindgen(getter, js_name = weightsWarning)]
    pub fn weights_warning(&self) -> Option<String> {
        self.engine.weights_warning()
    }
}

/// The photo in each view, preprocessed.
fn preprocessed(rgba: &[u8], width: u32, height: u32, views: &[View]) -> Result<Vec<Vec<f32>>, JsValue> {
    let image = Rgba::new(rgba, width, height).map_err(js_error)?;
    Ok(views.iter().map(|view| view.apply(image)).collect())
}

/// One project's learning state (see `src/project.rs`).
#[wasm_bindgen]
pub struct Project {
    inner: Rc<RefCell<LearningState>>,
}

impl Project {
    /// The state, for a call that does not await while holding it.
    fn state(&self) -> std::cell::RefMut<'_, LearningState> {
        self.inner.borrow_mut()
    }
}

#[wasm_bindgen]
impl Project {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Project {
        Project { inner: Rc::new(RefCell::new(LearningState::new())) }
    }

    /// Every setting's row, in order, for the page to build its controls from
    /// ([`Settings::schema`]).
    #[wasm_bindgen(js_name = settingsSchema)]
    pub fn settings_schema() -> Result<JsValue, JsValue> {
        to_js(&Settings::schema())
    }

    /// The settings in use, every key present.
    #[wasm_bindgen(getter)]
    pub fn settings(&self) -> Result<JsValue, JsValue> {
        to_js(&self.state().settings())
    }

    /// Change the settings (missing keys take their defaults; unknown keys and values out of
    /// range are refused). Resolves `true` when photos must be embedded again (see `waiting`).
    #[wasm_bindgen(js_name = setSettings)]
    pub fn set_settings(&self, settings: JsValue) -> Result<bool, JsValue> {
        let settings: Settings = from_js(settings)?;
        self.state().set_settings(settings).map_err(js_error)
    }

    /// A key naming the views photos are embedded in: embeddings stored under another key
    /// must be made again.
    #[wasm_bindgen(getter, js_name = viewsKey)]
    pub fn views_key(&self) -> String {
        views_key(&self.state().views())
    }

    /// Replace the classes: `[{ id, name, photos: [photoId] }]`, in order. Refused (and nothing
    /// changed) when a rule is broken: names empty or used twice, too many classes or photos.
    #[wasm_bindgen(js_name = setClasses)]
    pub fn set_classes(&self, classes: JsValue) -> Result<(), JsValue> {
        let classes: Vec<ClassSpec> = from_js(classes)?;
        self.state().set_classes(classes).map_err(js_error)
    }

    /// Whether a photo is in one of the classes.
    #[wasm_bindgen(js_name = hasPhoto)]
    pub fn has_photo(&self, photo: String) -> bool {
        self.state().has_photo(&photo)
    }

    /// Ids of the photos that still need `addPhoto` (or `setEmbeddings`), in class order.
    pub fn waiting(&self) -> Vec<String> {
        self.state().waiting()
    }

    /// Embed one photo (RGBA pixels) in every view in one backbone call and keep the
    /// embeddings under its id; resolves to them (a `Float32Array` to store, for `setEmbeddings`).
    #[wasm_bindgen(js_name = addPhoto)]
    pub fn add_photo(&self, backbone: &Backbone, photo: String, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let (state, engine) = (self.inner.clone(), backbone.engine.clone());
        future_to_promise(async move {
            let views = state.borrow().views();
            let embeddings = engine.embed(&preprocessed(&rgba, width, height, &views)?).await.map_err(js_error)?;
            state.borrow_mut().set_embeddings(&photo, embeddings.clone()).map_err(js_error)?;
            Ok(Float32Array::from(embeddings.as_slice()).into())
        })
    }

    /// Keep a photo's embeddings, made under the current `viewsKey` elsewhere: by a helper
    /// worker of the pool (`Backbone.embedViews`), or stored after an earlier `addPhoto`.
    #[wasm_bindgen(js_name = setEmbeddings)]
    pub fn set_embeddings(&self, photo: String, embeddings: Vec<f32>) -> Result<(), JsValue> {
        self.state().set_embeddings(&photo, embeddings).map_err(js_error)
    }

    /// Train, cross-validate and study every photo. `onProgress(progress)` is called after
    /// each step: `{ phase: "training", step, maxSteps, loss, trainAccuracy }` or
    /// `{ phase: "validating", fold, folds }`. `stop()` ends it early. Resolves to `{ model:
    /// Uint8Array, labels, history, validation, summary, checked: [{ photo, actual, predicted,
    /// confidence }], suspicious: [photoId], duplicates: [[photoId, photoId]], stopped }`; the
    /// model becomes the project's classifier.
    pub fn learn(&self, backbone: &Backbone, on_progress: Option<Function>) -> Promise {
        let (state, sha256) = (self.inner.clone(), backbone.engine.weights_sha256.clone());
        future_to_promise(async move {
            state.borrow_mut().start_learning(&sha256).map_err(js_error)?;
            let ran = run_learning(&state, on_progress).await;
            // Always finish, so that a failed run does not block the next one.
            let finished = state.borrow_mut().finish_learning();
            ran?;
            let report = finished.map_err(js_error)?;
            let result = to_js(&report)?;
            Reflect::set(&result, &"model".into(), &Uint8Array::from(report.model_bytes.as_slice()))?;
            Ok(result)
        })
    }

    /// Stop learning: the head keeps what training reached, and is not cross-validated.
    pub fn stop(&self) {
        self.state().stop();
    }

    /// Check a project file before any of it is kept (`crate::projectfile`): its
    /// `project.json` text, `{ name: size in bytes }` of the ZIP's other files, and the bytes of
    /// the model file it names, if any. Returns `{ backbone, settings, classes: [{ name, photos:
    /// [{ id | null, file, added, embeddings: { at, length, viewsKey } | null }] }], model:
    /// { file, labels, validation, checkedPhotos, suspicious, duplicates, history, seconds } |
    /// null }`, or throws a `bad-input` error naming what is wrong.
    #[wasm_bindgen(js_name = checkProjectFile)]
    pub fn check_project_file(json: String, files: JsValue, model: Option<Vec<u8>>) -> Result<JsValue, JsValue> {
        let files: std::collections::BTreeMap<String, u64> = from_js(files)?;
        to_js(&crate::projectfile::check(&json, &files, model.as_deref()).map_err(js_error)?)
    }

    /// Check a stored model's figures (their JSON, as the page keeps them) against its file and
    /// the project's photo ids: the figures as the page may show them, or a `bad-input` error.
    #[wasm_bindgen(js_name = checkStoredModel)]
    pub fn check_stored_model(figures: String, bytes: Vec<u8>, photos: Vec<String>) -> Result<JsValue, JsValue> {
        let photos = photos.into_iter().collect();
        to_js(&crate::projectfile::check_stored_model(&figures, &bytes, &photos).map_err(js_error)?)
    }

    /// Use a saved model file (`Uint8Array`), or none with `null`.
    #[wasm_bindgen(js_name = setModel)]
    pub fn set_model(&self, bytes: Option<Vec<u8>>) -> Result<(), JsValue> {
        self.state().set_model(bytes.as_deref()).map_err(js_error)
    }

    /// The model's labels, backbone sha256, views, cross-validated figures, creation time;
    /// `null` before training.
    #[wasm_bindgen(getter, js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsValue> {
        to_js(&self.state().classifier().map(|c| c.info().clone()))
    }

    /// The trained model as a standalone `.tflite` file computing in float (see `crate::export`).
    #[wasm_bindgen(js_name = exportTflite)]
    pub fn export_tflite(&self, backbone: &Backbone) -> Result<Vec<u8>, JsValue> {
        let state = self.state();
        let classifier = state.classifier().ok_or_else(|| js_error(Error::BadConfig("train a model first".into())))?;
        crate::export::tflite(&backbone.weights, classifier, crate::export::Arithmetic::Float).map_err(js_error)
    }

    /// Classify one photo (RGBA pixels) with the trained model: `{ predictions: [{ label,
    /// class, probability }] (most likely first), unfamiliar: { score, threshold, unfamiliar }
    /// | null, heatmap: { values: 49 values in [0, 1], row by row, where the model saw the best
    /// class; framing: how the photo became the square they cover } }`.
    pub fn classify(&self, backbone: &Backbone, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let (state, engine) = (self.inner.clone(), backbone.engine.clone());
        future_to_promise(async move {
            let views = state.borrow().predict_views().map_err(js_error)?;
            let photos = preprocessed(&rgba, width, height, &views)?;
            let (embeddings, maps) = engine.embed_with_maps(&photos).await.map_err(js_error)?;
            let state = state.borrow();
            let verdict = state.classify(&embeddings).map_err(js_error)?;
            let first_map = &maps[..maps.len() / views.len()];
            let heatmap = state.heatmap(first_map, verdict.predictions[0].class).map_err(js_error)?;
            let result = to_js(&verdict)?;
            let heat = js_sys::Object::new();
            Reflect::set(&heat, &"values".into(), &to_js(&heatmap)?)?;
            Reflect::set(&heat, &"framing".into(), &to_js(&views[0].framing)?)?;
            Reflect::set(&result, &"heatmap".into(), &heat)?;
            Ok(result)
        })
    }
}

/// How long learning computes before it yields to the worker's other messages (a stop among
/// them): yielding after every step cost more than the steps at a few hundred photos (637
/// yields, 0.76 s, to train and check 100 photos in four views each).
const YIELD_EVERY_MS: f64 = 10.0;

/// Step learning to the end, reporting each step and yielding every `YIELD_EVERY_MS` so that a
/// stop request is handled; a step's error stops learning.
async fn run_learning(state: &RefCell<LearningState>, on_progress: Option<Function>) -> Result<(), JsValue> {
    let mut computing_since = js_sys::Date::now();
    loop {
        let step = state.borrow_mut().step();
        match step {
            Ok(Some(progress)) => {
                // A point the line search did not take has nothing to show: only yield.
                let shown = !matches!(progress, crate::learn::Progress::Searching);
                if let Some(callback) = on_progress.as_ref().filter(|_| shown) {
                    if let Err(e) = callback.call1(&JsValue::NULL, &to_js(&progress)?) {
                        state.borrow_mut().stop();
                        return Err(e);
                    }
                }
                if js_sys::Date::now() - computing_since >= YIELD_EVERY_MS {
                    yield_now().await;
                    computing_since = js_sys::Date::now();
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                state.borrow_mut().stop();
                return Err(js_error(e));
            }
        }
    }
}
