//! Learning from labelled embeddings, start to finish, in the one order the page and the CLI
//! share: train the head on every photo ([`crate::train`]), study the photos for "none of
//! these" and near-duplicates ([`crate::familiar`]), cross-validate ([`crate::validate`]),
//! and write the model file ([`crate::model`]). One piece of work a [`Learning::step`] (one
//! optimiser step, of the head or of a fold), so that the page's worker can answer a stop
//! between any two.

use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::evaluate::Validated;
use crate::familiar::{study_on, Familiarity, Study, Studied, MAX_REFERENCES};
use crate::model::{now_unix_ms, Model, ModelInfo};
use crate::preprocess::{views, Seeing};
use crate::train::{StepReport, TrainConfig, Trained, Trainer, Work};
use crate::validate::{CrossValidation, CrossValidator};

/// At most this many photos are studied for "none of these" when learning is stopped before
/// the study ended ([`Learning::finish`]).
pub const STOPPED_STUDY_PHOTOS: usize = 500;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Progress {
    /// One optimiser step of the head.
    Training(StepReport),
    /// A point of a step's line search, not taken: nothing new to show (so that a stop is
    /// heard between two passes over the photos, not only between steps).
    Searching,
    /// `fold` of `folds` cross-validation folds done.
    Validating { fold: usize, folds: usize },
}

/// Learning in progress: call [`Learning::step`] until it returns `None`, then
/// [`Learning::finish`].
pub struct Learning {
    data: Dataset,
    config: TrainConfig,
    seeing: Seeing,
    backbone_sha256: String,
    trainer: Option<Trainer>,
    trained: Option<Trained>,
    validator: Option<CrossValidator>,
    validation: Option<CrossValidation>,
    /// The study for "none of these" and duplicates, a block of photos a step between training
    /// and cross-validation, so that a stop never waits for all of it.
    studying: Option<Study>,
    studied: Option<Studied>,
}

/// What learning leaves.
pub struct Learned {
    /// The model file's content, cross-validated figures included.
    pub model: Model,
    pub history: Vec<StepReport>,
    /// Each photo predicted by a head trained without it; `None` when stopped or when a class
    /// has too few photos to hold one out.
    pub validation: Option<CrossValidation>,
    /// Pairs of photos (indices into the dataset) that are nearly the same photo.
    pub duplicates: Vec<(usize, usize)>,
    /// Stopped before the end: the head is what training had reached, not cross-validated.
    pub stopped: bool,
}

impl Learning {
    /// Check the data and the settings, and get ready to train.
    pub fn new(data: Dataset, config: TrainConfig, seeing: Seeing, backbone_sha256: &str) -> Result<Self> {
        let trainer = Trainer::new(&data, config.clone())?;
        Ok(Learning {
            data,
            config,
            seeing,
            backbone_sha256: backbone_sha256.to_string(),
            trainer: Some(trainer),
            trained: None,
            validator: None,
            validation: None,
            studying: None,
            studied: None,
        })
    }

    /// The data learnt from.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Do the next piece of work; `None` when there is none left.
    pub fn step(&mut self) -> Result<Option<Progress>> {
        if let Some(trainer) = &mut self.trainer {
            match trainer.step() {
                Some(Work::Step(report)) => return Ok(Some(Progress::Training(report))),
                Some(Work::Searching) => return Ok(Some(Progress::Searching)),
                None => {}
            }
            self.trained = self.trainer.take().map(Trainer::finish);
            self.validator = CrossValidator::new(&self.data, &self.config)?;
            if let (Some(validator), Some(trained)) = (&mut self.validator, &self.trained) {
                validator.start_from(&trained.weights);
            }
            self.studying = Some(Study::new(&self.data, self.config.seed, MAX_REFERENCES));
            // Said before the study and the first fold run, so that a stop skips them at once.
            if let Some(validator) = &self.validator {
                return Ok(Some(Progress::Validating { fold: 0, folds: validator.folds }));
            }
        }
        if let Some(study) = &mut self.studying {
            // Told as checking's first fold; without folds to report (too few photos to hold
            // any out, so few to compare) it is done in one step.
            if let Some(validator) = &self.validator {
                if study.step() {
                    return Ok(Some(Progress::Validating { fold: 0, folds: validator.folds }));
                }
            }
            self.studied = self.studying.take().map(|s| s.finish(&self.data));
        }
        if let Some(validator) = &mut self.validator {
            let folds = validator.folds;
            if let Some(fold) = validator.next_step(&self.data)? {
                return Ok(Some(Progress::Validating { fold, folds }));
            }
            self.validation = self.validator.take().and_then(|v| v.finish(&self.data));
        }
        Ok(None)
    }

    /// Stop: the head keeps what training reached, and is not cross-validated.
    pub fn stop(&mut self) {
        if let Some(trainer) = self.trainer.take() {
            self.trained = Some(trainer.finish());
        }
        self.validator = None;
        self.studying = None;
    }

    /// Run every remaining step, calling `on_progress` after each; it returns `false` to stop.
    pub fn run(mut self, mut on_progress: impl FnMut(&Progress) -> bool) -> Result<Learned> {
        while let Some(progress) = self.step()? {
            if !on_progress(&progress) {
                self.stop();
                break;
            }
        }
        Ok(self.finish())
    }

    /// The model and what was found on the way.
    pub fn finish(mut self) -> Learned {
        if self.trainer.is_some() || self.validator.is_some() {
            self.stop();
        }
        let trained = self.trained.expect("a trainer is finished by stop()");
        let stopped = trained.stopped || (self.validation.is_none() && crate::validate::assign_folds(&self.data, self.config.seed).is_some());
        // Stopped before the study ended: studied again on fewer photos, so that the stop acts
        // at once (the whole study of 2,000 photos is a 2,000 x 2,000 product: about 0.15 s
        // natively, more in the page; on 500, a sixteenth).
        let (familiarity, duplicates) =
            self.studied.take().unwrap_or_else(|| study_on(&self.data, self.config.seed, STOPPED_STUDY_PHOTOS));
        let model = model_of(&trained, &self.backbone_sha256, self.seeing, self.validation.as_ref().map(|v| v.figures.clone()), familiarity);
        Learned { model, history: trained.history, validation: self.validation, duplicates, stopped }
    }
}

/// The model file's content for a trained head, stamped with the current time.
pub fn model_of(trained: &Trained, backbone_sha256: &str, seeing: Seeing, validation: Option<Validated>, familiarity: Option<Familiarity>) -> Model {
    let views = views(seeing);
    Model {
        info: ModelInfo {
            labels: trained.labels.clone(),
            backbone_sha256: backbone_sha256.to_string(),
            preprocess: views[0],
            views,
            hidden_units: trained.weights.shape.hidden,
            scaled_input: true,
            unfamiliar_threshold: familiarity.as_ref().map(|f| f.threshold),
            validation,
            penalty: trained.penalty,
            photos_per_class: trained.photos_per_class.clone(),
            created_unix_ms: now_unix_ms(),
        },
        head: trained.weights.clone(),
        familiarity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::clusters;

    #[test]
    fn trains_then_validates_then_writes_a_model() {
        let data = clusters(15, 3);
        let learning = Learning::new(data, TrainConfig::default(), Seeing::default(), "sha").unwrap();
        let (mut phases, mut folds_done) = (vec![], vec![]);
        let learned = learning
            .run(|p| {
                phases.push(matches!(p, Progress::Training(_)));
                if let Progress::Validating { fold, folds } = *p {
                    assert_eq!(folds, 5);
                    folds_done.push(fold);
                }
                true
            })
            .unwrap();
        let first_fold = phases.iter().position(|&training| !training).unwrap();
        assert!(first_fold > 0 && phases[first_fold..].iter().all(|&t| !t), "training, then folds only");
        // One report an optimiser step of each fold: folds done, from 0 (announced before the
        // first) to 5, never going back.
        assert!(folds_done.windows(2).all(|w| w[0] <= w[1]));
        folds_done.dedup();
        assert_eq!(folds_done, vec![0, 1, 2, 3, 4, 5], "45 photos: 5 folds");
        assert!(phases.len() - first_fold > 6, "several steps a fold, each a chance to stop");
        assert!(!learned.stopped);
        assert!(learned.model.info.validation.is_some());
        assert_eq!(learned.history.len(), first_fold);
    }

    #[test]
    fn a_stop_keeps_the_head_and_skips_validation() {
        let learning = Learning::new(clusters(10, 3), TrainConfig::default(), Seeing::default(), "sha").unwrap();
        let learned = learning.run(|_| false).unwrap();
        assert!(learned.stopped);
        assert_eq!(learned.history.len(), 1);
        assert!(learned.validation.is_none() && learned.model.info.validation.is_none());
    }

    #[test]
    fn a_stop_while_training_studies_fewer_photos_and_still_flags() {
        let learning = Learning::new(clusters(200, 3), TrainConfig::default(), Seeing::default(), "sha").unwrap();
        let learned = learning.run(|_| false).unwrap();
        let familiarity = learned.model.familiarity.expect("none of these, from fewer photos");
        assert_eq!(familiarity.references(), STOPPED_STUDY_PHOTOS);
        assert!(familiarity.threshold.is_finite());
    }

    #[test]
    fn a_stop_while_checking_ends_at_once_without_figures() {
        let learning = Learning::new(clusters(15, 3), TrainConfig::default(), Seeing::default(), "sha").unwrap();
        let mut checking = 0;
        let learned = learning
            .run(|p| {
                if matches!(p, Progress::Validating { .. }) {
                    checking += 1;
                }
                checking < 3
            })
            .unwrap();
        assert_eq!(checking, 3, "stopped on the third step of checking, inside the first fold");
        assert!(learned.stopped && learned.validation.is_none());
        assert!(learned.model.info.validation.is_none(), "no figures from a check cut short");
    }

    #[test]
    fn progress_reads_as_the_page_expects() {
        let json = serde_json::to_value(Progress::Validating { fold: 2, folds: 5 }).unwrap();
        assert_eq!(json, serde_json::json!({ "phase": "validating", "fold": 2, "folds": 5 }));
    }
}
