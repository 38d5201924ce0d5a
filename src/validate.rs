//! How well a head will do on photos it has not seen, estimated honestly from the photos there
//! are: stratified k-fold cross-validation (leave-one-out when photos are few). Each photo is
//! predicted exactly once, by a head trained without it (and without its augmented variants),
//! so the accuracy, the per-class figures and the confusion matrix all come from photos the
//! head did not train on. The accuracy comes with a 95 % range (Wilson's score interval), so
//! that four right answers out of four read "somewhere between 51 and 100 %", not "100 %".

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::Result;
use crate::evaluate::{wilson, Evaluation, Validated};
use crate::head::HeadWeights;
use crate::matrix::{argmax_rows, softmax_rows};
use crate::rng::Rng;
use crate::train::{TrainConfig, Trainer};

/// Folds of k-fold cross-validation.
pub const FOLDS: usize = 5;
/// Up to this many photos, every photo is its own fold (leave-one-out): the most honest
/// estimate, and cheap when photos are few.
pub const LEAVE_ONE_OUT_UP_TO: usize = 40;
/// Cross-validation needs this many photos in every class (one to hold out, one to train on).
pub const MIN_PHOTOS_PER_CLASS: usize = 2;
/// A photo whose cross-validated prediction is another class with at least this probability
/// is listed as possibly mislabelled.
pub const MISLABELLED_CONFIDENCE: f32 = 0.6;

/// The result of cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossValidation {
    /// The figures (what a model file keeps).
    pub figures: Validated,
    /// For each photo of the dataset, the class predicted by the head trained without it.
    pub predictions: Vec<usize>,
    /// For each photo, the probability of that predicted class.
    pub confidence: Vec<f32>,
    /// Photos predicted as another class with confidence: likely mislabelled, or ambiguous.
    pub suspicious: Vec<usize>,
}

/// Fold of each photo, stratified by class; `None` when a class has fewer than
/// [`MIN_PHOTOS_PER_CLASS`] photos.
pub fn assign_folds(data: &Dataset, seed: u64) -> Option<(usize, Vec<usize>)> {
    let counts = data.counts();
    if counts.iter().any(|&c| c < MIN_PHOTOS_PER_CLASS) {
        return None;
    }
    let folds = if data.len() <= LEAVE_ONE_OUT_UP_TO { data.len() } else { FOLDS };
    let mut rng = Rng::new(seed ^ FOLD_SEED);
    let mut fold_of = vec![0; data.len()];
    let mut next = 0;
    for class in 0..data.labels.len() {
        let mut members: Vec<usize> = (0..data.len()).filter(|&i| data.targets[i] == class).collect();
        rng.shuffle(&mut members);
        for photo in members {
            fold_of[photo] = next % folds;
            next += 1;
        }
    }
    Some((folds, fold_of))
}

/// A constant mixed into the seed so that folds differ from other shuffles.
const FOLD_SEED: u64 = 0xf01d_5eed;

/// Cross-validate training with `config` on `data`, the folds starting from `whole` (the head
/// trained on all of it) where [`CrossValidator::start_from`] allows. `on_fold(done, folds)`
/// runs after each fold and returns `false` to stop (then the result is `None`). `None` too
/// when a class has too few photos to hold one out.
pub fn cross_validate(
    data: &Dataset,
    config: &TrainConfig,
    whole: Option<&HeadWeights>,
    mut on_fold: impl FnMut(usize, usize) -> bool,
) -> Result<Option<CrossValidation>> {
    let Some(mut validator) = CrossValidator::new(data, config)? else { return Ok(None) };
    if let Some(whole) = whole {
        validator.start_from(whole);
    }
    let mut reported = 0;
    while let Some(done) = validator.next_step(data)? {
        if done > reported {
            reported = done;
            if !on_fold(done, validator.folds) {
                return Ok(None);
            }
        }
    }
    Ok(validator.finish(data))
}

/// Cross-validation in progress, one optimiser step a call, so that the page's worker can
/// answer a stop between any two (a whole fold of thousands of photos takes seconds).
/// Every call takes the same dataset it was made for.
pub struct CrossValidator {
    config: TrainConfig,
    /// How many folds there are.
    pub folds: usize,
    fold_of: Vec<usize>,
    done: usize,
    /// The fold being trained: its held-out photos and its trainer.
    current: Option<(Vec<usize>, Trainer)>,
    predictions: Vec<usize>,
    confidence: Vec<f32>,
    /// Where each fold's training starts (see [`CrossValidator::start_from`]).
    start: Option<HeadWeights>,
}

impl CrossValidator {
    /// Let each fold start from the head trained on every photo, where that cannot change what
    /// the fold learns: a softmax regression with a penalty has one optimum whatever the start,
    /// and from near it a fold converges in fewer steps. (A hidden layer's folds start afresh:
    /// their optimum depends on the start, which has seen the held-out photos.)
    pub fn start_from(&mut self, whole: &HeadWeights) {
        let convex = self.config.hidden_units == 0 && self.config.penalty.is_none_or(|p| p > 0.0);
        self.start = convex.then(|| whole.clone());
    }

    /// Folds as [`assign_folds`] makes them for `config.seed`; `None` when a class has too few
    /// photos to hold one out.
    pub fn new(data: &Dataset, config: &TrainConfig) -> Result<Option<Self>> {
        data.check_trainable()?;
        let Some((folds, fold_of)) = assign_folds(data, config.seed) else { return Ok(None) };
        Ok(Some(CrossValidator {
            config: config.clone(),
            folds,
            fold_of,
            done: 0,
            current: None,
            predictions: vec![0; data.len()],
            confidence: vec![0.0; data.len()],
            start: None,
        }))
    }

    /// One optimiser step of the fold in progress (starting the next fold, or predicting the
    /// one just trained): the number of folds done so far, `None` when all are.
    pub fn next_step(&mut self, data: &Dataset) -> Result<Option<usize>> {
        if self.done >= self.folds {
            return Ok(None);
        }
        if data.len() != self.fold_of.len() {
            return Err(crate::error::Error::Internal("cross-validation was given another dataset".into()));
        }
        let k = data.labels.len();
        if self.current.is_none() {
            let fold = self.done;
            let (held, kept): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&i| self.fold_of[i] == fold);
            if held.is_empty() {
                self.done += 1;
                return Ok(Some(self.done));
            }
            self.current = Some((held, Trainer::on(data, &kept, self.config.clone(), self.start.as_ref())?));
        }
        if let Some((_, trainer)) = &mut self.current {
            if trainer.step().is_some() {
                return Ok(Some(self.done));
            }
        }
        let Some((held, trainer)) = self.current.take() else { return Ok(Some(self.done)) };
        let weights = trainer.finish().weights;
        let x: Vec<f32> = held.iter().flat_map(|&i| data.embedding(i).iter().copied()).collect();
        let mut p = weights.logits(&x);
        softmax_rows(&mut p, k);
        for ((&photo, class), row) in held.iter().zip(argmax_rows(&p, k)).zip(p.chunks_exact(k)) {
            self.predictions[photo] = class;
            self.confidence[photo] = row[class];
        }
        self.done += 1;
        Ok(Some(self.done))
    }

    /// The figures, once every fold is done (`None` before).
    pub fn finish(self, data: &Dataset) -> Option<CrossValidation> {
        if self.done < self.folds || data.len() != self.fold_of.len() {
            return None;
        }
        let (predictions, confidence) = (self.predictions, self.confidence);
        let evaluation = Evaluation::new(&data.labels, &data.targets, &predictions);
        let right = (0..data.len()).filter(|&i| predictions[i] == data.targets[i]).count();
        let recall_ranges = (0..data.labels.len()).map(|c| wilson(evaluation.confusion[c][c], evaluation.per_class[c].support)).collect();
        let suspicious = (0..data.len())
            .filter(|&i| predictions[i] != data.targets[i] && confidence[i] >= MISLABELLED_CONFIDENCE)
            .collect();
        Some(CrossValidation {
            figures: Validated { folds: self.folds, photos: data.len(), accuracy_range: wilson(right, data.len()), evaluation, recall_ranges },
            predictions,
            confidence,
            suspicious,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::clusters;

    #[test]
    fn folds_cover_every_photo_once_and_are_stratified() {
        for per_class in [2, 5, 30] {
            let data = clusters(per_class, 3);
            let (folds, fold_of) = assign_folds(&data, 1).unwrap();
            assert_eq!(folds, if data.len() <= LEAVE_ONE_OUT_UP_TO { data.len() } else { FOLDS });
            assert_eq!(fold_of.len(), data.len());
            for fold in 0..folds {
                let members: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] == fold).collect();
                assert!(!members.is_empty());
                // No fold holds out every photo of a class.
                for class in 0..3 {
                    let held = members.iter().filter(|&&i| data.targets[i] == class).count();
                    assert!(held < per_class);
                }
            }
        }
        assert!(assign_folds(&clusters(1, 3), 1).is_none());
    }

    #[test]
    fn predicts_every_photo_from_a_head_that_did_not_see_it() {
        let data = clusters(15, 4);
        let mut calls = 0;
        let cv = cross_validate(&data, &TrainConfig::default(), None, |_, _| {
            calls += 1;
            true
        })
        .unwrap()
        .unwrap();
        assert_eq!(calls, FOLDS);
        assert_eq!(cv.predictions.len(), 45);
        let f = &cv.figures;
        assert_eq!(f.evaluation.confusion.iter().flatten().sum::<usize>(), 45);
        assert!(f.evaluation.accuracy > 0.9, "{}", f.evaluation.accuracy);
        assert!(f.accuracy_range.0 < f.evaluation.accuracy && f.accuracy_range.1 >= f.evaluation.accuracy);
        assert!(f.summary().contains("cross-validated on 45 photos (5 folds)"), "{}", f.summary());
    }

    #[test]
    fn folds_started_from_the_whole_head_reach_the_same_heads() {
        // Four classes barely apart: the folds get photos wrong, with middling confidence.
        let mut rng = Rng::new(9);
        let mut data = Dataset::new((0..4).map(|c| format!("c{c}")).collect());
        for i in 0..80 {
            let e: Vec<f32> =
                (0..crate::backbone::EMBEDDING_DIM).map(|d| rng.next_f32() + if d % 4 == i % 4 { 0.04 } else { 0.0 }).collect();
            data.push(&e, i % 4).unwrap();
        }
        let config = TrainConfig::default();
        let whole = crate::train::train(&data, config.clone(), |_| true).unwrap().weights;
        let cold = cross_validate(&data, &config, None, |_, _| true).unwrap().unwrap();
        let warm = cross_validate(&data, &config, Some(&whole), |_, _| true).unwrap().unwrap();
        assert!(cold.figures.evaluation.accuracy < 0.95, "{}", cold.figures.evaluation.accuracy);
        // The same optimum, reached to the optimiser's tolerance: the same verdicts but for
        // near-ties, and the same confidence within a few hundredths.
        let differ = cold.predictions.iter().zip(&warm.predictions).filter(|(a, b)| a != b).count();
        assert!(differ <= 4, "{differ} of 80 verdicts differ");
        let most = cold.confidence.iter().zip(&warm.confidence).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!("cold and warm folds: {differ} of 80 verdicts differ, confidence by at most {most:.3}");
        assert!(most < 0.05, "confidence differs by {most}");
        // A hidden layer's optimum depends on its start: its folds start afresh.
        let mut validator = CrossValidator::new(&data, &TrainConfig { hidden_units: 8, ..config }).unwrap().unwrap();
        validator.start_from(&whole);
        assert!(validator.start.is_none());
    }

    #[test]
    fn a_mislabelled_photo_is_suspicious() {
        let mut data = clusters(10, 5);
        data.targets[0] = 1; // a photo of class 0 labelled 1
        let cv = cross_validate(&data, &TrainConfig::default(), None, |_, _| true).unwrap().unwrap();
        assert_eq!(cv.predictions[0], 0);
        assert!(cv.suspicious.contains(&0), "{:?} {:?}", cv.suspicious, &cv.confidence[..3]);
    }
}
