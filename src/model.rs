//! A trained model as one file: a safetensors file whose tensors are the head's weights and
//! whose metadata holds the labels, the backbone's sha256, the preprocessing, the figures and
//! the creation time. `format` names the file kind and `version` its layout, so that a reader
//! refuses what it cannot read with a message that says why.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::head::{HeadShape, HeadWeights};
use crate::preprocess::Preprocess;
use crate::train::Trained;

/// The value of the metadata key `format`.
pub const FORMAT: &str = "fewshot-model";
/// The layout this build writes and the newest it reads.
pub const VERSION: u32 = 1;

/// Everything a trained classifier needs besides the backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub info: ModelInfo,
    pub head: HeadWeights,
}

/// The descriptive part of a model, stored as JSON in the file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub labels: Vec<String>,
    /// sha256 of the backbone file the embeddings came from.
    pub backbone_sha256: String,
    pub preprocess: Preprocess,
    /// Units of the hidden layer; 0 for none.
    pub hidden_units: usize,
    /// On the held-out photos, when there were some.
    pub held_out: Option<Evaluation>,
    /// Photos per class the head was trained on.
    pub photos_per_class: Vec<usize>,
    /// Milliseconds since 1970-01-01 UTC.
    pub created_unix_ms: u64,
}

impl Model {
    /// The model a training run made, stamped with the current time.
    pub fn new(trained: &Trained, backbone_sha256: &str, preprocess: Preprocess) -> Self {
        Model {
            info: ModelInfo {
                labels: trained.labels.clone(),
                backbone_sha256: backbone_sha256.to_string(),
                preprocess,
                hidden_units: trained.weights.shape.hidden,
                held_out: trained.held_out.clone(),
                photos_per_class: trained.photos_per_class.clone(),
                created_unix_ms: now_unix_ms(),
            },
            head: trained.weights.clone(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let names = if self.head.layers.len() == 2 { vec!["hidden", "output"] } else { vec!["output"] };
        let dims = HeadWeights::layer_dims(self.head.shape);
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
        for ((name, (inputs, outputs)), (weight, bias)) in names.iter().zip(dims).zip(&self.head.layers) {
            tensors.push((format!("{name}.weight"), vec![inputs, outputs], f32_bytes(weight)));
            tensors.push((format!("{name}.bias"), vec![outputs], f32_bytes(bias)));
        }
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(io)?)))
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), VERSION.to_string()),
            ("info".to_string(), serde_json::to_string(&self.info).map_err(io)?),
        ]);
        safetensors::serialize(views, Some(metadata)).map_err(io)
    }

    /// Read a model file, refusing other files and newer versions with a clear reason.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |why: String| Error::ModelFile(why);
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("it is not a Fewshot model (not a safetensors file: {e})")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if metadata.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad("it is a safetensors file but not a Fewshot model".into()));
        }
        let version: u32 = metadata.get("version").and_then(|v| v.parse().ok()).unwrap_or(0);
        if version > VERSION {
            return Err(bad(format!(
                "it was written by a newer Fewshot (model format {version}); this one reads format {VERSION} and older: update Fewshot"
            )));
        }
        if version == 0 {
            return Err(bad("its format version is missing".into()));
        }
        let info: ModelInfo = serde_json::from_str(metadata.get("info").map(String::as_str).unwrap_or(""))
            .map_err(|e| bad(format!("its description is damaged ({e})")))?;
        let shape = HeadShape { classes: info.labels.len(), hidden: info.hidden_units };
        if shape.classes < 2 {
            return Err(bad(format!("it has {} labels; a model needs at least two", shape.classes)));
        }
        let names = if shape.hidden > 0 { vec!["hidden", "output"] } else { vec!["output"] };
        let mut layers = vec![];
        for (name, (inputs, outputs)) in names.into_iter().zip(HeadWeights::layer_dims(shape)) {
            let read = |tensor: String, want: Vec<usize>| -> Result<Vec<f32>> {
                let view = file.tensor(&tensor).map_err(|_| bad(format!("the tensor \"{tensor}\" is missing")))?;
                if view.dtype() != Dtype::F32 || view.shape() != want.as_slice() {
                    return Err(bad(format!(
                        "the tensor \"{tensor}\" is {:?} {:?}, expected F32 {want:?}",
                        view.dtype(),
                        view.shape()
                    )));
                }
                Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
            };
            layers.push((read(format!("{name}.weight"), vec![inputs, outputs])?, read(format!("{name}.bias"), vec![outputs])?));
        }
        Ok(Model { info, head: HeadWeights { shape, layers } })
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(format!("cannot write the model: {e}"))
}

/// Milliseconds since 1970-01-01 UTC, from the platform's clock.
pub fn now_unix_ms() -> u64 {
    #[cfg(target_family = "wasm")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(target_family = "wasm"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn model(hidden: usize) -> Model {
        let shape = HeadShape { classes: 3, hidden };
        Model {
            info: ModelInfo {
                labels: vec!["a".into(), "b".into(), "<c>".into()],
                backbone_sha256: crate::backbone::KNOWN_SHA256.into(),
                preprocess: Preprocess::default(),
                hidden_units: hidden,
                held_out: None,
                photos_per_class: vec![1, 2, 3],
                created_unix_ms: 1,
            },
            head: HeadWeights::init(shape, &mut Rng::new(3)),
        }
    }

    #[test]
    fn round_trips() {
        for hidden in [0, 8] {
            let m = model(hidden);
            assert_eq!(Model::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn newer_versions_and_foreign_files_are_refused() {
        let bytes = model(0).to_bytes().unwrap();
        let mut newer = bytes.clone();
        let at = newer.windows(13).position(|w| w == b"\"version\":\"1\"").expect("version in the header");
        newer[at + 11] = b'9';
        let err = Model::from_bytes(&newer).unwrap_err().to_string();
        assert!(err.contains("newer Fewshot (model format 9)"), "{err}");
        assert!(Model::from_bytes(b"GIF89a....").unwrap_err().to_string().contains("not a Fewshot model"));
        assert!(Model::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    }
}
