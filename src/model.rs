//! A trained model as one file: a safetensors file whose tensors are the head's weights and
//! whose metadata holds the labels, the backbone's sha256, the preprocessing, the figures and
//! the creation time. `format` names the file kind and `version` its layout, so that a reader
//! refuses what it cannot read with a message that says why.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::backbone::EMBEDDING_DIM;
use crate::error::{Error, Result};
use crate::familiar::Familiarity;
use crate::head::{HeadShape, HeadWeights};
use crate::preprocess::View;
use crate::evaluate::Validated;

/// The value of the metadata key `format`.
pub const FORMAT: &str = "fewshot-model";
/// The layout this build writes and the newest it reads. 2: cross-validated figures replace
/// the held-out ones (a version 1 file still reads, without figures). 3: the head reads
/// embeddings scaled to one length (`scaled_input`; older files read them as they come).
pub const VERSION: u32 = 3;

/// Everything a trained classifier needs besides the backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub info: ModelInfo,
    pub head: HeadWeights,
    /// The training photos' fingerprints for "none of these"; `None` in files before format 2
    /// or trained on very few photos.
    pub familiarity: Option<Familiarity>,
}

/// The descriptive part of a model, stored as JSON in the file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub labels: Vec<String>,
    /// sha256 of the backbone file the embeddings came from.
    pub backbone_sha256: String,
    pub preprocess: View,
    /// The views a prediction averages over (see [`crate::preprocess::views`]); empty in files
    /// before format 2, meaning `preprocess` alone.
    #[serde(default)]
    pub views: Vec<View>,
    /// Units of the hidden layer; 0 for none.
    pub hidden_units: usize,
    /// Whether the head reads each embedding scaled to one length
    /// ([`crate::head::scale_to_input_length`]): true from format 3, false before.
    #[serde(default)]
    pub scaled_input: bool,
    /// The score above which a photo is called unlike every class ([`Familiarity`]).
    #[serde(default)]
    pub unfamiliar_threshold: Option<f32>,
    /// Cross-validated figures, when every class had photos enough.
    #[serde(default)]
    pub validation: Option<Validated>,
    /// The L2 penalty the head was trained with.
    #[serde(default)]
    pub penalty: f32,
    /// Photos per class the head was trained on.
    pub photos_per_class: Vec<usize>,
    /// Milliseconds since 1970-01-01 UTC.
    pub created_unix_ms: u64,
}

impl Model {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let names = if self.head.layers.len() == 2 { vec!["hidden", "output"] } else { vec!["output"] };
        let dims = self.head.shape.layer_dims();
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
        for ((name, (inputs, outputs)), (weight, bias)) in names.iter().zip(dims).zip(&self.head.layers) {
            tensors.push((format!("{name}.weight"), vec![inputs, outputs], f32_bytes(weight)));
            tensors.push((format!("{name}.bias"), vec![outputs], f32_bytes(bias)));
        }
        if let Some(familiarity) = &self.familiarity {
            let (quantised, scales) = familiarity.to_parts();
            tensors.push(("familiar.references".into(), vec![scales.len(), EMBEDDING_DIM], quantised));
            tensors.push(("familiar.scales".into(), vec![scales.len()], f32_bytes(&scales)));
        }
        let mut info = self.info.clone();
        info.unfamiliar_threshold = self.familiarity.as_ref().map(|f| f.threshold);
        let info = serde_json::to_string(&info).map_err(io)?;
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                let dtype = if name == "familiar.references" { Dtype::U8 } else { Dtype::F32 };
                Ok((name.clone(), TensorView::new(dtype, shape.clone(), bytes).map_err(io)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let checksum = checksum(&info, tensors.iter().map(|(name, _, bytes)| (name.as_str(), bytes.as_slice())));
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), VERSION.to_string()),
            ("info".to_string(), info),
            ("sha256".to_string(), checksum),
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
        let info_json = metadata.get("info").map(String::as_str).unwrap_or("");
        if version >= 2 {
            let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
            names.sort();
            let views: Vec<(String, Vec<u8>)> =
                names.iter().filter_map(|n| file.tensor(n).ok().map(|v| (n.clone(), v.data().to_vec()))).collect();
            let expected = checksum(info_json, views.iter().map(|(n, d)| (n.as_str(), d.as_slice())));
            if metadata.get("sha256") != Some(&expected) {
                return Err(bad("it is damaged: its content does not match its checksum".into()));
            }
        }
        let info: ModelInfo = serde_json::from_str(info_json).map_err(|e| bad(format!("its description is damaged ({e})")))?;
        let shape = HeadShape { classes: info.labels.len(), hidden: info.hidden_units };
        if shape.classes < 2 {
            return Err(bad(format!("it has {} labels; a model needs at least two", shape.classes)));
        }
        let names = if shape.hidden > 0 { vec!["hidden", "output"] } else { vec!["output"] };
        let mut layers = vec![];
        for (name, (inputs, outputs)) in names.into_iter().zip(shape.layer_dims()) {
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
        let familiarity = match (file.tensor("familiar.references"), file.tensor("familiar.scales"), info.unfamiliar_threshold) {
            (Ok(references), Ok(scales), Some(threshold)) => {
                let scales: Vec<f32> = scales.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if references.dtype() != Dtype::U8 || references.shape() != [scales.len(), EMBEDDING_DIM] {
                    return Err(bad("its familiarity references have the wrong shape".into()));
                }
                Some(Familiarity::from_parts(references.data(), &scales, threshold).ok_or_else(|| bad("its familiarity references are damaged".into()))?)
            }
            _ => None,
        };
        Ok(Model { info, head: HeadWeights { shape, layers }, familiarity })
    }
}

/// Hex sha256 over the description and every tensor (name, then bytes), in name order.
fn checksum<'a>(info: &str, tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by_key(|(name, _)| *name);
    let mut hasher = Sha256::new();
    hasher.update(info.as_bytes());
    for (name, bytes) in tensors {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A small model of three classes (one with HTML in its name) for tests.
    pub(crate) fn model(hidden: usize) -> Model {
        let shape = HeadShape { classes: 3, hidden };
        Model {
            info: ModelInfo {
                labels: vec!["a".into(), "b".into(), "<c>".into()],
                backbone_sha256: crate::backbone::KNOWN_SHA256.into(),
                preprocess: View::default(),
                views: vec![],
                hidden_units: hidden,
                scaled_input: true,
                unfamiliar_threshold: None,
                validation: None,
                penalty: 0.01,
                photos_per_class: vec![1, 2, 3],
                created_unix_ms: 1,
            },
            head: HeadWeights::init(shape, &mut Rng::new(3)),
            familiarity: Familiarity::fit(&crate::train::tests::clusters(3, 1), 1),
        }
    }

    #[test]
    fn round_trips() {
        for hidden in [0, 8] {
            let m = model(hidden);
            let back = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
            assert_eq!(back.head, m.head);
            assert_eq!(back.info.labels, m.info.labels);
            assert_eq!(back.info.unfamiliar_threshold, m.familiarity.as_ref().map(|f| f.threshold));
            let probe = crate::train::tests::clusters(2, 9).embeddings;
            let (a, b) = (back.familiarity.unwrap().judge(&probe, 1), m.familiarity.unwrap().judge(&probe, 1));
            assert!(a.iter().zip(&b).all(|(a, b)| (a.score - b.score).abs() < 2e-3));
        }
    }

    #[test]
    fn a_damaged_file_is_refused_not_loaded_with_changed_weights() {
        let bytes = model(0).to_bytes().unwrap();
        let mut loaded_changed = 0;
        // Flip one bit at a time across the tensor data (the end of the file).
        for at in (bytes.len() - 2000..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            if Model::from_bytes(&damaged).is_ok() {
                loaded_changed += 1;
            }
        }
        assert_eq!(loaded_changed, 0);
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(Model::from_bytes(&damaged).unwrap_err().to_string().contains("does not match its checksum"));
    }

    #[test]
    fn a_description_before_format_3_reads_embeddings_as_they_come() {
        let mut json = serde_json::to_value(&model(0).info).unwrap();
        json.as_object_mut().unwrap().remove("scaledInput");
        assert!(!serde_json::from_value::<ModelInfo>(json).unwrap().scaled_input);
        assert!(model(0).info.scaled_input);
    }

    #[test]
    fn newer_versions_and_foreign_files_are_refused() {
        let bytes = model(0).to_bytes().unwrap();
        let mut newer = bytes.clone();
        let current = format!("\"version\":\"{VERSION}\"");
        let at = newer.windows(13).position(|w| w == current.as_bytes()).expect("version in the header");
        newer[at + 11] = b'9';
        let err = Model::from_bytes(&newer).unwrap_err().to_string();
        assert!(err.contains("newer Fewshot (model format 9)"), "{err}");
        assert!(Model::from_bytes(b"GIF89a....").unwrap_err().to_string().contains("not a Fewshot model"));
        assert!(Model::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    }
}
