//! Mutation fuzzing of every parser a person's file or a JavaScript caller reaches: the weights
//! file (the backbone and the TFLite export), the model file, photos, the settings and the
//! classes as JSON. Each harness takes bytes and must answer Ok or an error, never panic.
//!
//! The normal test run tries a few hundred mutants a harness (seconds). For a long run:
//!
//! ```sh
//! FEWSHOT_FUZZ_MUTANTS=100000 FEWSHOT_FUZZ_SEED=7 cargo test --test integration fuzz -- --nocapture
//! ```
//!
//! A mutant that panics is written to `target/fuzz/<harness>-<seed>-<n>.bin` and named in the
//! failure, so that it can be replayed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use fewshot::decode::decode;
use fewshot::engine::sha256_hex;
use fewshot::export::{tflite, Arithmetic};
use fewshot::head::{HeadShape, HeadWeights};
use fewshot::model::{Model, ModelInfo};
use fewshot::preprocess::{views, View, Seeing};
use fewshot::project::{ClassSpec, Project};
use fewshot::settings::Settings;
use fewshot::rng::Rng;
use fewshot::{device, Classifier, Engine};

use crate::util::{shared, weights};

/// Mutants a harness tries: `$FEWSHOT_FUZZ_MUTANTS`, else `default`.
fn mutants(default: usize) -> usize {
    std::env::var("FEWSHOT_FUZZ_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("FEWSHOT_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// One mutation of `original`: bit flips, bytes set to edge values, a cut, a chunk removed or
/// repeated, or a 32-bit word (an offset or a length, in a flatbuffer) set to an edge value.
fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let len = bytes.len().max(1);
        match rng.below(6) {
            0 => {
                let i = rng.below(len);
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len);
                if let Some(b) = bytes.get_mut(i) {
                    *b = [0, 0xff, 0x7f, 0x80, rng.below(256) as u8][rng.below(5)];
                }
            }
            2 => bytes.truncate(rng.below(len)),
            3 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b).min(bytes.len()));
                bytes.drain(a.min(b)..b);
            }
            4 => {
                let a = rng.below(len).min(bytes.len());
                let b = (a + 1 + rng.below(64)).min(bytes.len());
                let chunk = bytes[a..b].to_vec();
                bytes.splice(a..a, chunk);
            }
            _ => {
                let i = rng.below(len) & !3;
                let word: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, len as u32, rng.next_u64() as u32][rng.below(6)];
                if i + 4 <= bytes.len() {
                    bytes[i..i + 4].copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }
    bytes
}

/// What a harness made of a mutant.
#[derive(PartialEq)]
enum Outcome {
    /// Read (a parser that may accept changes: a photo with other pixels is still a photo).
    Accepted,
    /// Read, and the same as the original: only what carries no meaning changed.
    Unchanged,
    /// Refused with an error.
    Refused,
}
use Outcome::*;

impl From<bool> for Outcome {
    fn from(ok: bool) -> Self {
        if ok {
            Accepted
        } else {
            Refused
        }
    }
}

/// Run `harness` on `count` mutants of `original`; panics are collected, written out and named.
/// Returns (accepted, refused).
fn fuzz<O: Into<Outcome>>(name: &str, original: &[u8], count: usize, harness: impl Fn(&[u8]) -> O) -> (usize, usize) {
    let seed = seed();
    let mut rng = Rng::new(seed ^ name.len() as u64);
    let (mut accepted, mut unchanged, mut refused, mut panics) = (0, 0, 0, vec![]);
    for n in 0..count {
        let mutant = mutate(original, &mut rng);
        match catch_unwind(AssertUnwindSafe(|| harness(&mutant).into())) {
            Ok(Accepted) => accepted += 1,
            Ok(Unchanged) => unchanged += 1,
            Ok(Refused) => refused += 1,
            Err(_) => {
                let dir = crate::util::repo().join("target/fuzz");
                std::fs::create_dir_all(&dir).ok();
                let path = dir.join(format!("{name}-{seed}-{n}.bin"));
                std::fs::write(&path, &mutant).ok();
                panics.push(path.display().to_string());
            }
        }
    }
    println!(
        "fuzz {name}: {count} mutants, {accepted} accepted, {unchanged} read unchanged, {refused} refused with an error, {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "{name}: mutants that panicked: {panics:?}");
    (accepted, refused)
}

fn classifier(sha: &str) -> Classifier {
    let shape = HeadShape { classes: 2, hidden: 0 };
    Classifier::new(Model {
        info: ModelInfo {
            labels: vec!["ripe".into(), "unripe".into()],
            backbone_sha256: sha.into(),
            preprocess: View::default(),
            views: views(Seeing::default()),
            hidden_units: 0,
            scaled_input: true,
            unfamiliar_threshold: None,
            validation: None,
            penalty: 0.0,
            photos_per_class: vec![3, 3],
            created_unix_ms: 0,
        },
        head: HeadWeights::init(shape, &mut Rng::new(1)),
        familiarity: None,
    })
}

#[test]
fn fuzz_weights_for_the_backbone_and_the_export() {
    let weights = weights();
    let model = classifier("");
    let (_, refused) = fuzz("weights", &weights, mutants(200), |bytes| {
        let engine = Engine::new(bytes, device::cpu()).is_ok();
        let export = tflite(bytes, &model, Arithmetic::Float).is_ok() && tflite(bytes, &model, Arithmetic::Quantized).is_ok();
        engine && export
    });
    assert!(refused > 0, "no mutant was refused: the mutator does nothing");
}

#[test]
fn fuzz_model_files() {
    let original = classifier(&sha256_hex(&weights())).model;
    let bytes = original.to_bytes().unwrap();
    // A mutant may change only what carries no meaning (the header's padding) and load
    // unchanged; a changed weight or label must never load (the checksum).
    let (changed, _) = fuzz("model", &bytes, mutants(400), |bytes| match Model::from_bytes(bytes) {
        Ok(m) if m == original => Unchanged,
        Ok(_) => Accepted,
        Err(_) => Refused,
    });
    assert_eq!(changed, 0, "mutated model files loaded with changes");
}

#[test]
fn fuzz_photos() {
    for name in ["parrot.jpg", "cat.bmp"] {
        let photo = std::fs::read(shared().join("fixtures/images").join(name)).unwrap();
        fuzz(name, &photo, mutants(150), |bytes| match decode(bytes) {
            Ok(photo) => {
                let rgba = photo.rgba().unwrap();
                views(Seeing::default()).iter().all(|v| v.apply(rgba).iter().all(|x| x.is_finite()))
            }
            Err(_) => false,
        });
    }
}

#[test]
fn fuzz_settings_and_classes_as_javascript_sends_them() {
    let settings = serde_json::to_vec(&Settings::default()).unwrap();
    fuzz("settings", &settings, mutants(400), |bytes| {
        let Ok(settings) = serde_json::from_slice::<Settings>(bytes) else { return false };
        Project::new().set_settings(settings).is_ok()
    });
    let classes = br#"[{"id":"a","name":"ripe","photos":["p1","p2"]},{"id":"b","name":"unripe","photos":["p3"]}]"#;
    fuzz("classes", classes, mutants(400), |bytes| {
        let Ok(classes) = serde_json::from_slice::<Vec<ClassSpec>>(bytes) else { return false };
        Project::new().set_classes(classes).is_ok()
    });
}
