//! The engine: the backbone on a device, turning preprocessed photos into embeddings, and a
//! trained [`Classifier`] turning embeddings into predictions. Shared by the CLI and the page.

use burn::prelude::*;
use sha2::{Digest, Sha256};

use crate::backbone::{Backbone, EMBEDDING_DIM, IMAGENET_CLASSES, KNOWN_SHA256};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::familiar::Unfamiliarity;
use crate::matrix::{argmax_rows, softmax_rows};
use crate::model::{Model, ModelInfo};
use crate::predict::{softmax, top_k, Prediction};
use crate::preprocess::{Preprocess, INPUT_LEN, INPUT_SIDE};

/// The frozen backbone on its device.
pub struct Engine {
    backbone: Backbone,
    device: Device,
    /// sha256 of the weights file, hex.
    pub weights_sha256: String,
}

impl Engine {
    /// Load the backbone from the bytes of its `.tflite` file onto `device`.
    pub fn new(weights: &[u8], device: Device) -> Result<Self> {
        let backbone = Backbone::from_tflite(weights, &device)?;
        Ok(Engine { backbone, device, weights_sha256: sha256_hex(weights) })
    }

    /// Whether the weights are the published MobileNetV2 file; a warning, not an error, since
    /// a file of the same architecture works.
    pub fn weights_warning(&self) -> Option<String> {
        (self.weights_sha256 != KNOWN_SHA256).then(|| {
            format!(
                "the weights file's sha256 is {}, not the published {KNOWN_SHA256}: embeddings will differ from other Fewshot installs",
                self.weights_sha256
            )
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Embeddings of preprocessed photos (each `[3, 224, 224]`, see [`crate::preprocess`]),
    /// one after the other in a `[n * 1280]` vector. Reads back once, asynchronously.
    pub async fn embed(&self, photos: &[Vec<f32>]) -> Result<Vec<f32>> {
        let embeddings = self.backbone.embed(self.input(photos)?);
        read(embeddings).await
    }

    /// The backbone's own ImageNet probabilities, `[n * 1001]`.
    pub async fn imagenet(&self, photos: &[Vec<f32>]) -> Result<Vec<f32>> {
        let logits = self.backbone.imagenet_logits(self.backbone.embed(self.input(photos)?));
        let logits = read(logits).await?;
        Ok(logits.chunks(IMAGENET_CLASSES).flat_map(softmax).collect())
    }

    /// Run one photo through the backbone so that shaders are compiled before the first real
    /// photo arrives.
    pub async fn warm_up(&self) -> Result<()> {
        self.embed(&[vec![0.0; INPUT_LEN]]).await.map(|_| ())
    }

    /// # Shapes
    ///   - Output [n, 3, 224, 224]
    fn input(&self, photos: &[Vec<f32>]) -> Result<Tensor<4>> {
        if photos.is_empty() || photos.iter().any(|p| p.len() != INPUT_LEN) {
            return Err(Error::BadConfig(format!("expected 1 or more preprocessed photos of {INPUT_LEN} values")));
        }
        let flat: Vec<f32> = photos.concat();
        Ok(Tensor::from_data(TensorData::new(flat, [photos.len(), 3, INPUT_SIDE, INPUT_SIDE]), &self.device))
    }
}

/// Read a tensor back to the CPU without blocking (the only way that works on WebGPU).
async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor.into_data_async().await.map_err(|e| Error::Gpu(format!("reading results back failed: {e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| Error::Gpu(format!("unexpected result type: {e:?}")))
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A trained head with its labels, ready to predict: a small matrix product on the CPU.
pub struct Classifier {
    pub model: Model,
}

impl Classifier {
    pub fn new(model: Model) -> Self {
        Classifier { model }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    /// The views of a photo this model averages over: embed each, in this order.
    pub fn views(&self) -> Vec<Preprocess> {
        let info = &self.model.info;
        if info.views.is_empty() {
            vec![info.preprocess]
        } else {
            info.views.clone()
        }
    }

    /// All classes with their probabilities, most likely first, for one photo from the
    /// embeddings of one or more of its [`Classifier::views`] (`[v * 1280]`, averaged).
    pub fn predict(&self, views: &[f32]) -> Result<Vec<Prediction>> {
        let p = self.probabilities(views)?;
        let labels = &self.model.info.labels;
        let k = labels.len();
        let v = p.len() / k;
        let mean: Vec<f32> = (0..k).map(|c| p.chunks_exact(k).map(|row| row[c]).sum::<f32>() / v as f32).collect();
        Ok(top_k(&mean, labels, k))
    }

    /// Accuracy, per-class figures and confusion on labelled embeddings whose labels are this
    /// model's; each photo's variants (its other views) are averaged in, as in [`Classifier::predict`].
    pub fn evaluate(&self, data: &Dataset) -> Result<Evaluation> {
        if data.labels != self.model.info.labels {
            return Err(Error::BadConfig("the test photos' classes differ from the model's".into()));
        }
        let k = data.labels.len();
        let mut sums = self.probabilities(&data.embeddings)?;
        let mut counts = vec![1.0f32; data.len()];
        if !data.variant_of.is_empty() {
            let extra = self.probabilities(&data.variants)?;
            for (row, &of) in extra.chunks_exact(k).zip(&data.variant_of) {
                sums[of * k..(of + 1) * k].iter_mut().zip(row).for_each(|(s, p)| *s += p);
                counts[of] += 1.0;
            }
        }
        sums.chunks_exact_mut(k).zip(&counts).for_each(|(row, &n)| row.iter_mut().for_each(|p| *p /= n));
        let predicted = argmax_rows(&sums, k);
        Ok(Evaluation::new(&data.labels, &data.targets, &predicted))
    }

    /// For each of `[n * 1280]` embeddings, how unlike the training photos it is ("none of
    /// these"); `None` for a model without the training photos' fingerprints.
    pub fn judge(&self, embeddings: &[f32]) -> Result<Option<Vec<Unfamiliarity>>> {
        self.probabilities(embeddings)?; // the same checks
        Ok(self.model.familiarity.as_ref().map(|f| f.judge(embeddings)))
    }

    /// Softmax probabilities `[n * classes]`.
    pub fn probabilities(&self, embeddings: &[f32]) -> Result<Vec<f32>> {
        if embeddings.is_empty() || !embeddings.len().is_multiple_of(EMBEDDING_DIM) {
            return Err(Error::BadConfig(format!("embeddings must be a multiple of {EMBEDDING_DIM} values")));
        }
        if embeddings.iter().any(|v| !v.is_finite()) {
            return Err(Error::BadConfig("an embedding holds a value that is not a finite number".into()));
        }
        let mut p = self.model.head.logits(embeddings);
        softmax_rows(&mut p, self.model.info.labels.len());
        Ok(p)
    }
}
