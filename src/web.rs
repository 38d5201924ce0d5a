//! The JavaScript API, and the only file that mentions `wasm_bindgen`. Each export converts its
//! arguments, delegates to the engine, and converts the result back: typed objects through
//! serde-wasm-bindgen, errors as JS `Error`s carrying the readable message.
//!
//! ```js
//! import init, { Fewshot, Classifier } from "./pkg/fewshot.js";
//! await init();
//! const fewshot = await Fewshot.create(weightBytes, "auto");   // "webgpu" | "cpu" | "auto"
//! const embedding = await fewshot.embed(imageData.data, imageData.width, imageData.height, {});
//! const result = await fewshot.train(labels, embeddings, targets, new Float32Array(), new Uint32Array(),
//!   { hiddenUnits: 0 }, { framing: "crop", mirror: false }, (progress) => true);
//! const classifier = Classifier.load(result.model);
//! classifier.predict(embedding);  // [{ label, class, probability }, ...]
//! ```

use std::rc::Rc;

use js_sys::{Float32Array, Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::backbone::{imagenet_labels, EMBEDDING_DIM};
use crate::dataset::Dataset;
use crate::device;
use crate::engine::{Classifier as EngineClassifier, Engine};
use crate::familiar::study;
use crate::error::Error;
use crate::model::Model;
use crate::predict::top_k;
use crate::preprocess::{views, Preprocess, Rgba, Seeing};
use crate::train::{TrainConfig, Trainer};
use crate::validate::CrossValidator;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The backbone loaded on WebGPU or the CPU.
#[wasm_bindgen]
pub struct Fewshot {
    inner: Rc<Inner>,
}

struct Inner {
    engine: Engine,
    /// "webgpu" or "cpu".
    device: String,
    /// Why this device was chosen, in words.
    device_note: String,
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_error)
}

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
    let promise = Promise::new(&mut |resolve, _| {
        match web_sys::MessageChannel::new() {
            Ok(channel) => {
                let port = channel.port1();
                port.set_onmessage(Some(&resolve));
                let _ = channel.port2().post_message(&JsValue::NULL);
            }
            Err(_) => {
                let _ = resolve.call0(&JsValue::NULL);
            }
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

#[wasm_bindgen]
impl Fewshot {
    /// Load the backbone from the bytes of `mobilenet_v2_1.0_224_quant.tflite`.
    /// `device`: "auto" (default: WebGPU on a hardware adapter, else the CPU), "webgpu" or "cpu".
    pub fn create(weights: Vec<u8>, device: Option<String>) -> Promise {
        future_to_promise(async move {
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
                        "the only WebGPU adapter emulates a GPU in software, which is slower than the CPU path".to_string(),
                    ),
                    None => (device::cpu(), "cpu", "this browser offers no WebGPU adapter".to_string()),
                },
                other => return Err(js_error(Error::BadConfig(format!("device must be auto, webgpu or cpu, not \"{other}\"")))),
            };
            let engine = Engine::new(&weights, burn_device).map_err(js_error)?;
            let inner = Inner { engine, device: name.into(), device_note: note };
            Ok(Fewshot { inner: Rc::new(inner) }.into())
        })
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        self.inner.device.clone()
    }

    /// Why that device, in words.
    #[wasm_bindgen(getter, js_name = deviceNote)]
    pub fn device_note(&self) -> String {
        self.inner.device_note.clone()
    }

    /// sha256 of the weights, hex.
    #[wasm_bindgen(getter, js_name = weightsSha256)]
    pub fn weights_sha256(&self) -> String {
        self.inner.engine.weights_sha256.clone()
    }

    /// A warning when the weights are not the published file, else `undefined`.
    #[wasm_bindgen(getter, js_name = weightsWarning)]
    pub fn weights_warning(&self) -> Option<String> {
        self.inner.engine.weights_warning()
    }

    /// The views each photo is embedded in for these settings (`{ framing: "crop" | "pad",
    /// mirror: bool }`, defaults when missing): a list of `embed` options, the first the photo
    /// as framed.
    pub fn views(seeing: JsValue) -> Result<JsValue, JsValue> {
        let seeing: Seeing = from_js(seeing)?;
        to_js(&views(seeing))
    }

    /// The page's settings at their defaults: how photos are seen (`{ framing, mirror }`) and
    /// the training settings the page shows (`hiddenUnits`).
    #[wasm_bindgen(js_name = defaultSettings)]
    pub fn default_settings() -> Result<JsValue, JsValue> {
        let settings = to_js(&Seeing::default())?;
        Reflect::set(&settings, &"hiddenUnits".into(), &(TrainConfig::default().hidden_units as u32).into())?;
        Ok(settings)
    }

    /// Run one blank photo through the backbone (compiles the GPU shaders once).
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.engine.warm_up().await.map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The 1280-d embedding (`Float32Array`) of RGBA pixels, e.g. `ImageData.data`.
    /// `options`: `{ framing: "crop" | "pad", flip: bool, zoom: 0..0.9 }`.
    pub fn embed(&self, rgba: Vec<u8>, width: u32, height: u32, options: JsValue) -> Promise {
        self.embed_batch(rgba, 1, width, height, options)
    }

    /// Embeddings of `count` photos of the same size, their RGBA pixels one after the other,
    /// in one backbone call: a `Float32Array` of count x 1280.
    #[wasm_bindgen(js_name = embedBatch)]
    pub fn embed_batch(&self, rgba: Vec<u8>, count: u32, width: u32, height: u32, options: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options: Preprocess = from_js(options)?;
            let size = Rgba::byte_len(width, height).map_err(js_error)?;
            if count == 0 || rgba.len() / size != count as usize || rgba.len() % size != 0 {
                return Err(js_error(Error::BadPixels { width, height, got: rgba.len() / count.max(1) as usize }));
            }
            let photos = rgba
                .chunks_exact(size)
                .map(|pixels| Ok(options.apply(Rgba::new(pixels, width, height)?)))
                .collect::<crate::Result<Vec<_>>>()
                .map_err(js_error)?;
            let embeddings = inner.engine.embed(&photos).await.map_err(js_error)?;
            Ok(Float32Array::from(embeddings.as_slice()).into())
        })
    }

    /// The embedding and the last feature map of one photo: `{ embedding: Float32Array(1280),
    /// map: Float32Array(1280 * 49) }`; pass the map to `Classifier.heatmap`.
    #[wasm_bindgen(js_name = embedWithMap)]
    pub fn embed_with_map(&self, rgba: Vec<u8>, width: u32, height: u32, options: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options: Preprocess = from_js(options)?;
            let photo = options.apply(Rgba::new(&rgba, width, height).map_err(js_error)?);
            let (embedding, map) = inner.engine.embed_with_maps(&[photo]).await.map_err(js_error)?;
            let result = js_sys::Object::new();
            Reflect::set(&result, &"embedding".into(), &Float32Array::from(embedding.as_slice()))?;
            Reflect::set(&result, &"map".into(), &Float32Array::from(map.as_slice()))?;
            Ok(result.into())
        })
    }

    /// The backbone's own ImageNet top-5: `[{ label, class, probability }]`.
    pub fn imagenet(&self, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let photo = Preprocess::default().apply(Rgba::new(&rgba, width, height).map_err(js_error)?);
            let probabilities = inner.engine.imagenet(&[photo]).await.map_err(js_error)?;
            to_js(&top_k(&probabilities, &imagenet_labels(), 5))
        })
    }

    /// Train a head on embeddings (`Float32Array` of n x 1280) with class indices
    /// (`Uint32Array` of n), plus augmented variants (`Float32Array` of m x 1280) with the index
    /// of the photo each varies (`Uint32Array` of m; both may be empty), then cross-validate it.
    /// `onProgress(report)` runs after every step (`{ phase: "training", step, maxSteps, loss,
    /// trainAccuracy }`) and before every fold (`{ phase: "validating", fold, folds }`, `fold` = folds done); returning
    /// `false` stops (training then keeps what it has; validation is skipped). Resolves to
    /// `{ model: Uint8Array, history, validation, predictions, confidence, suspicious, duplicates,
    /// stopped }`, where `predictions[i]` is photo i's class as predicted by a head trained
    /// without it and `duplicates` lists pairs `[i, j]` of nearly identical photos.
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        &self,
        labels: Vec<String>,
        embeddings: Vec<f32>,
        targets: Vec<u32>,
        variants: Vec<f32>,
        variant_of: Vec<u32>,
        config: JsValue,
        seeing: JsValue,
        on_progress: Option<Function>,
    ) -> Promise {
        let sha256 = self.inner.engine.weights_sha256.clone();
        future_to_promise(async move {
            let config: TrainConfig = from_js(config)?;
            let seeing: Seeing = from_js(seeing)?;
            let mut data = Dataset::new(labels);
            if embeddings.len() != targets.len() * EMBEDDING_DIM {
                return Err(js_error(Error::BadConfig("embeddings and targets differ in number".into())));
            }
            for (i, &t) in targets.iter().enumerate() {
                data.push(&embeddings[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM], t as usize).map_err(js_error)?;
            }
            if variants.len() != variant_of.len() * EMBEDDING_DIM {
                return Err(js_error(Error::BadConfig("variants and their photos differ in number".into())));
            }
            for (v, &of) in variant_of.iter().enumerate() {
                data.push_variant(&variants[v * EMBEDDING_DIM..(v + 1) * EMBEDDING_DIM], of as usize).map_err(js_error)?;
            }
            let report = |value: JsValue| -> Result<bool, JsValue> {
                match &on_progress {
                    Some(callback) => Ok(callback.call1(&JsValue::NULL, &value)?.as_bool() != Some(false)),
                    None => Ok(true),
                }
            };
            let mut trainer = Trainer::new(&data, config.clone()).map_err(js_error)?;
            let mut go_on = true;
            while let Some(step) = trainer.step() {
                let value = to_js(&step)?;
                Reflect::set(&value, &"phase".into(), &"training".into())?;
                go_on = report(value)?;
                if !go_on {
                    break;
                }
                yield_now().await;
            }
            let trained = trainer.finish();
            // Cross-validation: fold by fold, yielding between folds.
            let mut validation = None;
            if go_on {
                if let Some(mut cv) = CrossValidator::new(&data, &config).map_err(js_error)? {
                    let (folds, mut done) = (cv.folds, 0);
                    loop {
                        // Reported before each fold, so that a stop skips the work at once.
                        let value = js_sys::Object::new();
                        Reflect::set(&value, &"phase".into(), &"validating".into())?;
                        Reflect::set(&value, &"fold".into(), &(done as u32).into())?;
                        Reflect::set(&value, &"folds".into(), &(folds as u32).into())?;
                        if !report(value.into())? {
                            break;
                        }
                        yield_now().await;
                        match cv.next_fold().map_err(js_error)? {
                            Some(d) => done = d,
                            None => break,
                        }
                    }
                    validation = cv.finish();
                }
            }
            let (familiarity, duplicates) = study(&data, config.seed);
            let model = trained.to_model(&sha256, seeing, validation.as_ref().map(|v| v.figures.clone()), familiarity);
            let bytes = model.to_bytes().map_err(js_error)?;
            let result = js_sys::Object::new();
            Reflect::set(&result, &"model".into(), &Uint8Array::from(bytes.as_slice()))?;
            Reflect::set(&result, &"history".into(), &to_js(&trained.history)?)?;
            let figures = to_js(&model.info.validation)?;
            if let Some(v) = &model.info.validation {
                Reflect::set(&figures, &"summary".into(), &v.summary().into())?;
            }
            Reflect::set(&result, &"validation".into(), &figures)?;
            Reflect::set(&result, &"predictions".into(), &to_js(&validation.as_ref().map(|v| &v.predictions))?)?;
            Reflect::set(&result, &"confidence".into(), &to_js(&validation.as_ref().map(|v| &v.confidence))?)?;
            Reflect::set(&result, &"suspicious".into(), &to_js(&validation.as_ref().map(|v| &v.suspicious))?)?;
            Reflect::set(&result, &"stopped".into(), &trained.stopped.into())?;
            Reflect::set(&result, &"duplicates".into(), &to_js(&duplicates)?)?;
            Ok(result.into())
        })
    }
}

/// A trained classifier, loaded from a model file.
#[wasm_bindgen]
pub struct Classifier {
    inner: EngineClassifier,
}

#[wasm_bindgen]
impl Classifier {
    /// Read a model file (the `model` bytes of a training result, or an exported file).
    pub fn load(bytes: &[u8]) -> Result<Classifier, JsError> {
        Ok(Classifier { inner: EngineClassifier::new(Model::from_bytes(bytes)?) })
    }

    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> Vec<String> {
        self.inner.info().labels.clone()
    }

    /// Labels, backbone sha256, preprocessing, held-out figures, creation time.
    #[wasm_bindgen(getter)]
    pub fn info(&self) -> Result<JsValue, JsValue> {
        to_js(self.inner.info())
    }

    /// How photos must be preprocessed for this model (pass to `Fewshot.embed`): the first of
    /// its `views`.
    #[wasm_bindgen(getter)]
    pub fn preprocess(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.info().preprocess)
    }

    /// The views of a photo this model averages over: embed the photo with each (in order),
    /// concatenate, and pass to `predict`.
    #[wasm_bindgen(getter)]
    pub fn views(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.views())
    }

    /// Every class with its probability, most likely first, for one photo: its embedding, or
    /// the embeddings of its `views` one after the other (averaged).
    pub fn predict(&self, embedding: &[f32]) -> Result<JsValue, JsValue> {
        to_js(&self.inner.predict(embedding).map_err(js_error)?)
    }

    /// How unlike the training photos one embedding (of the first view) is: `{ score, threshold, unfamiliar }`
    /// (`unfamiliar`: "none of these"), or `null` for a model trained on too few photos (or
    /// saved by an older Fewshot) to tell.
    pub fn judge(&self, embedding: &[f32]) -> Result<JsValue, JsValue> {
        let first = &embedding[..embedding.len().min(EMBEDDING_DIM)];
        let judged = self.inner.judge(first).map_err(js_error)?;
        to_js(&judged.map(|j| j[0]))
    }

    /// Where in the photo the model saw `class`: 7x7 values in [0, 1], row by row from the top
    /// left of the square the backbone saw, from a map of `Fewshot.embedWithMap`.
    pub fn heatmap(&self, map: &[f32], class: u32) -> Result<Vec<f32>, JsError> {
        Ok(self.inner.heatmap(map, class as usize)?)
    }

    /// The file's bytes again (to save it).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Result<Vec<u8>, JsError> {
        Ok(self.inner.model.to_bytes()?)
    }
}
