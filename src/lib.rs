//! Fewshot: teach an image classifier new categories from a few photos, on your own device.
//!
//! A photo's path through the crate, one module a step:
//! [`preprocess`] (RGBA → 224x224, [-1, 1]) → [`backbone`] (MobileNetV2 → 1280-d embedding) →
//! [`head`] (trained by [`train`] with [`optimize`] on a [`dataset`] of embeddings, its accuracy
//! estimated by [`validate`], the whole sequence in [`learn`]) → [`predict`] (probabilities
//! per class), with [`evaluate`] for figures, [`matrix`] for the head's arithmetic and
//! [`model`] for the file a trained classifier is saved in. [`engine`] runs the backbone on a
//! device, [`classifier`] a trained head with its labels (predictions, figures, heatmaps);
//! [`project`] owns one project's learning state (classes, embeddings by photo, settings,
//! rules, the classifier) for the page (`web.rs`, the only wasm-specific module),
//! [`settings`] declares what a person can change (the page's controls and the CLI's options
//! are built from it), [`projectfile`] checks a saved project's description before any of it
//! is kept, and [`export`] writes a trained classifier as a standalone `.tflite` file, in the
//! format [`tflite`] declares once for it and for the backbone's reader.
//! [`error`] depends on nothing; no module depends on one later in this path.

pub mod backbone;
pub mod classifier;
pub mod dataset;
#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod decode;
pub mod device;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod familiar;
pub mod head;
pub mod learn;
pub mod matrix;
pub mod model;
pub mod optimize;
pub mod predict;
pub mod preprocess;
pub mod project;
pub mod projectfile;
pub mod rng;
pub mod settings;
pub mod tflite;
pub mod train;
pub mod validate;

#[cfg(target_family = "wasm")]
mod web;

pub use classifier::Classifier;
pub use engine::Engine;
pub use error::{Error, Result};
