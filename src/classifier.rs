//! A trained head with its labels: embeddings in, what a person reads out (every class with its
//! probability, averaged over a photo's views), plus the model's figures on labelled photos,
//! how unlike the training photos a new one is, and where in a photo the head saw a class.
//! The embeddings come from [`crate::engine::Engine`].

use crate::backbone::{EMBEDDING_DIM, FEATURE_SIDE};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::familiar::Unfamiliarity;
use crate::head::scale_to_input_length;
use crate::matrix::{argmax_rows, softmax_rows};
use crate::model::{Model, ModelInfo};
use crate::predict::{top_k, Prediction};
use crate::preprocess::View;

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
    pub fn views(&self) -> Vec<View> {
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

    /// For each photo of `[n * views * 1280]` embeddings (each photo's views one after the
    /// other, the first as framed), how unlike the training photos it is ("none of these", by
    /// its best view: [`crate::familiar`]); `None` for a model without the training photos'
    /// fingerprints.
    pub fn judge(&self, embeddings: &[f32], views: usize) -> Result<Option<Vec<Unfamiliarity>>> {
        check_embeddings(embeddings)?;
        if views == 0 || !embeddings.len().is_multiple_of(views * EMBEDDING_DIM) {
            return Err(Error::BadConfig(format!("{} values are not whole photos of {views} views", embeddings.len())));
        }
        Ok(self.model.familiarity.as_ref().map(|f| f.judge(embeddings, views)))
    }

    /// Where in the photo the head saw `class`: its logit for each of the 7x7 regions of a
    /// last feature map (`[1280 * 49]`, channel-major, from
    /// [`crate::engine::Engine::embed_with_maps`]), scaled to [0, 1], row by row from the top
    /// left. For a softmax regression this is the class-activation map (Zhou et al. 2016): the
    /// head's weights applied to each region.
    pub fn heatmap(&self, map: &[f32], class: usize) -> Result<Vec<f32>> {
        let regions = FEATURE_SIDE * FEATURE_SIDE;
        if map.len() != EMBEDDING_DIM * regions {
            return Err(Error::BadConfig(format!("a feature map has {} values, not {}", map.len(), EMBEDDING_DIM * regions)));
        }
        let k = self.model.info.labels.len();
        if class >= k {
            return Err(Error::BadConfig(format!("class {class} but the model has {k}")));
        }
        let mut by_region = vec![0.0; regions * EMBEDDING_DIM];
        for (c, channel) in map.chunks_exact(regions).enumerate() {
            for (r, &v) in channel.iter().enumerate() {
                by_region[r * EMBEDDING_DIM + c] = v;
            }
        }
        let logits = self.model.head.logits(&by_region);
        let heat: Vec<f32> = logits.chunks_exact(k).map(|row| row[class]).collect();
        let (low, high) = heat.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let span = (high - low).max(1e-6);
        Ok(heat.iter().map(|v| (v - low) / span).collect())
    }

    /// Softmax probabilities `[n * classes]`.
    pub fn probabilities(&self, embeddings: &[f32]) -> Result<Vec<f32>> {
        check_embeddings(embeddings)?;
        let mut p = if self.model.info.scaled_input {
            let mut scaled = embeddings.to_vec();
            scale_to_input_length(&mut scaled);
            self.model.head.logits(&scaled)
        } else {
            self.model.head.logits(embeddings)
        };
        softmax_rows(&mut p, self.model.info.labels.len());
        Ok(p)
    }
}

/// Embeddings a caller hands in: one or more rows of 1,280 finite numbers.
fn check_embeddings(embeddings: &[f32]) -> Result<()> {
    if embeddings.is_empty() || !embeddings.len().is_multiple_of(EMBEDDING_DIM) {
        return Err(Error::BadConfig(format!("embeddings must be a multiple of {EMBEDDING_DIM} values")));
    }
    if embeddings.iter().any(|v| !v.is_finite()) {
        return Err(Error::BadConfig("an embedding holds a value that is not a finite number".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{HeadShape, HeadWeights};
    use crate::model::ModelInfo;
    use crate::preprocess::View;
    use crate::rng::Rng;

    #[test]
    fn the_heatmap_peaks_where_the_class_features_are() {
        // Class 1 is "channel 0 is high"; the map has channel 0 high in region row 2, column 5.
        let shape = HeadShape { classes: 2, hidden: 0 };
        let mut head = HeadWeights::init(shape, &mut Rng::new(1));
        head.layers[0].0[1] = 1.0; // weight [input 0, class 1]
        let info = ModelInfo {
            labels: vec!["a".into(), "b".into()],
            backbone_sha256: String::new(),
            preprocess: View::default(),
            views: vec![],
            hidden_units: 0,
            scaled_input: true,
            unfamiliar_threshold: None,
            validation: None,
            penalty: 0.0,
            photos_per_class: vec![1, 1],
            created_unix_ms: 0,
        };
        let classifier = Classifier::new(Model { info, head, familiarity: None });
        let regions = FEATURE_SIDE * FEATURE_SIDE;
        let mut map = vec![0.1; EMBEDDING_DIM * regions];
        map[2 * FEATURE_SIDE + 5] = 3.0; // channel 0, region (2, 5)
        let heat = classifier.heatmap(&map, 1).unwrap();
        assert_eq!(heat.len(), 49);
        let peak = heat.iter().enumerate().fold(0, |best, (i, &v)| if v > heat[best] { i } else { best });
        assert_eq!(peak, 2 * FEATURE_SIDE + 5);
        assert_eq!(heat[peak], 1.0);
        assert!(classifier.heatmap(&map[1..], 1).is_err());
        assert!(classifier.heatmap(&map, 2).is_err());
    }

    #[test]
    fn a_model_of_scaled_input_answers_the_same_for_any_length_and_an_older_one_does_not() {
        let mut model = crate::model::tests::model(0);
        let mut rng = Rng::new(5);
        model.head.layers[0].0.iter_mut().for_each(|w| *w = rng.next_f32() - 0.5);
        let x: Vec<f32> = (0..EMBEDDING_DIM).map(|i| ((i * 7919) % 13) as f32 / 13.0).collect();
        let longer: Vec<f32> = x.iter().map(|v| v * 3.0).collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-5);
        let scaled = Classifier::new(model.clone());
        assert!(close(&scaled.probabilities(&x).unwrap(), &scaled.probabilities(&longer).unwrap()));
        model.info.scaled_input = false;
        let older = Classifier::new(model);
        assert!(!close(&older.probabilities(&x).unwrap(), &older.probabilities(&longer).unwrap()));
    }
}
