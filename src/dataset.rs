//! Labelled embeddings collected from a person's photos, and the stratified held-out split.

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::error::{Error, Result};
use crate::head::scale_to_input_length;
use crate::rng::Rng;

/// Fraction of each class held out to measure the head on photos it was not trained on.
pub const HOLDOUT_FRACTION: f64 = 0.15;
/// A held-out split is made only when every class has at least this many photos.
pub const MIN_PHOTOS_FOR_HOLDOUT: usize = 5;

/// Embeddings with the index of their class, each scaled as the head reads it
/// ([`crate::head::scale_to_input_length`]) when it is added.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dataset {
    pub labels: Vec<String>,
    /// `[n * 1280]`, one embedding after the other.
    pub embeddings: Vec<f32>,
    pub targets: Vec<usize>,
    /// Extra embeddings of photos already in the set (mirrored, zoomed: augmentation),
    /// `[m * 1280]`; they only ever train, alongside the photo they vary.
    #[serde(default)]
    pub variants: Vec<f32>,
    /// For each variant, the index of the photo it varies.
    #[serde(default)]
    pub variant_of: Vec<usize>,
}

impl Dataset {
    pub fn new(labels: Vec<String>) -> Self {
        Dataset { labels, ..Default::default() }
    }

    /// Add one embedding of class `target`.
    pub fn push(&mut self, embedding: &[f32], target: usize) -> Result<()> {
        if embedding.len() != EMBEDDING_DIM {
            return Err(Error::BadConfig(format!("an embedding has {} values, not {EMBEDDING_DIM}", embedding.len())));
        }
        if target >= self.labels.len() {
            return Err(Error::BadConfig(format!("class index {target} but only {} classes", self.labels.len())));
        }
        self.embeddings.extend_from_slice(embedding);
        scale_to_input_length(&mut self.embeddings[(self.targets.len()) * EMBEDDING_DIM..]);
        self.targets.push(target);
        Ok(())
    }

    /// Add an augmented embedding of photo `of`.
    pub fn push_variant(&mut self, embedding: &[f32], of: usize) -> Result<()> {
        if embedding.len() != EMBEDDING_DIM || of >= self.len() {
            return Err(Error::BadConfig(format!("a variant needs {EMBEDDING_DIM} values and an existing photo")));
        }
        self.variants.extend_from_slice(embedding);
        scale_to_input_length(&mut self.variants[self.variant_of.len() * EMBEDDING_DIM..]);
        self.variant_of.push(of);
        Ok(())
    }

    /// Embedding and class of sample `i`: photos are `0..len()`, variants follow.
    pub fn sample(&self, i: usize) -> (&[f32], usize) {
        match i.checked_sub(self.len()) {
            None => (self.embedding(i), self.targets[i]),
            Some(v) => (self.variant(v), self.targets[self.variant_of[v]]),
        }
    }

    /// Sample indices of `photos` and of all their variants.
    pub fn with_variants(&self, photos: &[usize]) -> Vec<usize> {
        let mut chosen = vec![false; self.len()];
        photos.iter().for_each(|&p| chosen[p] = true);
        let variants = (0..self.variant_of.len()).filter(|&v| chosen[self.variant_of[v]]).map(|v| self.len() + v);
        photos.iter().copied().chain(variants).collect()
    }

    /// A dataset of some photos (in the order given), with their variants.
    pub fn subset(&self, photos: &[usize]) -> Result<Dataset> {
        let mut out = Dataset::new(self.labels.clone());
        let mut new_index = vec![usize::MAX; self.len()];
        for (n, &p) in photos.iter().enumerate() {
            out.push(self.embedding(p), self.targets[p])?;
            new_index[p] = n;
        }
        for (v, &of) in self.variant_of.iter().enumerate() {
            if new_index[of] != usize::MAX {
                out.push_variant(self.variant(v), new_index[of])?;
            }
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn embedding(&self, i: usize) -> &[f32] {
        &self.embeddings[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM]
    }

    /// Variant `v`'s embedding.
    pub fn variant(&self, v: usize) -> &[f32] {
        &self.variants[v * EMBEDDING_DIM..(v + 1) * EMBEDDING_DIM]
    }

    /// Each photo's variants (indices for [`Dataset::variant`]), in the order added.
    pub fn variants_by_photo(&self) -> Vec<Vec<usize>> {
        let mut by_photo: Vec<Vec<usize>> = vec![vec![]; self.len()];
        self.variant_of.iter().enumerate().for_each(|(v, &of)| by_photo[of].push(v));
        by_photo
    }

    /// Every photo's views, one photo after the other (`[n * views * 1280]`), and how many views
    /// a photo has; `None` when photos have different numbers of views.
    pub fn photos_with_views(&self) -> Option<(Vec<f32>, usize)> {
        let by_photo = self.variants_by_photo();
        let views = 1 + by_photo.first().map_or(0, Vec::len);
        if by_photo.iter().any(|v| v.len() + 1 != views) {
            return None;
        }
        let mut out = Vec::with_capacity(self.len() * views * EMBEDDING_DIM);
        for (i, variants) in by_photo.iter().enumerate() {
            out.extend_from_slice(self.embedding(i));
            variants.iter().for_each(|&v| out.extend_from_slice(self.variant(v)));
        }
        Some((out, views))
    }

    /// Photos per class.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        self.targets.iter().for_each(|&t| counts[t] += 1);
        counts
    }

    /// Refuse what cannot be trained: fewer than two classes with photos, or an empty class.
    pub fn check_trainable(&self) -> Result<()> {
        let counts = self.counts();
        let with_photos = counts.iter().filter(|&&c| c > 0).count();
        if with_photos < 2 {
            return Err(Error::TooFewClasses { with_photos });
        }
        if let Some(empty) = counts.iter().position(|&c| c == 0) {
            return Err(Error::EmptyClass(self.labels[empty].clone()));
        }
        if self.embeddings.len() != self.targets.len() * EMBEDDING_DIM {
            return Err(Error::BadConfig("embeddings and labels differ in number".into()));
        }
        Ok(())
    }

    /// Indices for training and for the held-out check: per class, 15 % (at least one photo)
    /// is held out when every class has enough photos; otherwise everything trains.
    pub fn split(&self, seed: u64) -> Split {
        let counts = self.counts();
        let mut rng = Rng::new(seed ^ SPLIT_SEED);
        let mut split = Split::default();
        let holdout = counts.iter().all(|&c| c >= MIN_PHOTOS_FOR_HOLDOUT);
        for class in 0..self.labels.len() {
            let mut members: Vec<usize> = (0..self.len()).filter(|&i| self.targets[i] == class).collect();
            rng.shuffle(&mut members);
            let held = if holdout {
                ((members.len() as f64 * HOLDOUT_FRACTION).round() as usize).max(1)
            } else {
                0
            };
            split.held_out.extend_from_slice(&members[..held]);
            split.train.extend_from_slice(&members[held..]);
        }
        split.train.sort_unstable();
        split.held_out.sort_unstable();
        split
    }
}

/// A constant mixed into the split's seed so that it differs from the shuffle's.
const SPLIT_SEED: u64 = 0x5eed_5e1f;

/// Indices into a [`Dataset`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub held_out: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(counts: &[usize]) -> Dataset {
        let mut d = Dataset::new(counts.iter().enumerate().map(|(i, _)| format!("c{i}")).collect());
        for (class, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                d.push(&[0.0; EMBEDDING_DIM], class).unwrap();
            }
        }
        d
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let d = dataset(&[20, 7, 5]);
        let s = d.split(1);
        let held: Vec<usize> = (0..3).map(|c| s.held_out.iter().filter(|&&i| d.targets[i] == c).count()).collect();
        assert_eq!(held, vec![3, 1, 1]);
        assert_eq!(s.train.len() + s.held_out.len(), 32);
        assert_eq!(s, d.split(1));
        assert_ne!(s, d.split(2));
    }

    #[test]
    fn small_classes_train_on_everything() {
        let s = dataset(&[20, 4]).split(0);
        assert!(s.held_out.is_empty());
        assert_eq!(s.train.len(), 24);
    }

    #[test]
    fn untrainable_sets_are_refused() {
        assert_eq!(dataset(&[5]).check_trainable(), Err(Error::TooFewClasses { with_photos: 1 }));
        assert_eq!(dataset(&[5, 0, 3]).check_trainable(), Err(Error::EmptyClass("c1".into())));
        assert!(dataset(&[5, 3]).check_trainable().is_ok());
    }
}
