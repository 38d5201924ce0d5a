//! Train the head on cached embeddings: Adam on cross-entropy, with optional label smoothing,
//! weight decay and class weighting, one epoch per call so that callers can report progress,
//! yield to the browser and stop between epochs.
//!
//! The head trains on Burn's CPU device (`flex` with autodiff) everywhere, the browser too: it
//! is tiny (1280 x classes), every read-back there is synchronous and immediate, and it was
//! measured faster than a GPU for this size (`../shared/ENVIRONMENT.md`: 1,000 embeddings x 50
//! epochs in 0.4 s natively, 71 s on lavapipe).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::dataset::{Dataset, Split};
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::head::{Head, HeadShape, HeadWeights};
use crate::rng::Rng;

/// Hyper-parameters of head training. Missing fields take the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Units of a hidden ReLU layer; 0 trains a softmax regression.
    pub hidden_units: usize,
    /// Mix this much of the uniform distribution into the targets.
    pub label_smoothing: f32,
    /// L2 penalty added to the gradients (Adam's classic weight decay).
    pub weight_decay: f32,
    /// Weight each photo by `n / (classes * n_class)`, so small classes count as much as big.
    pub balance_classes: bool,
    /// Hold out 15 % of each class (when every class has 5 photos or more).
    pub holdout: bool,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 50,
            batch_size: 16,
            learning_rate: 1e-3,
            hidden_units: 0,
            label_smoothing: 0.0,
            weight_decay: 0.0,
            balance_classes: true,
            holdout: true,
            seed: 42,
        }
    }
}

impl TrainConfig {
    fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::BadConfig(what));
        if self.epochs == 0 || self.epochs > 10_000 {
            return bad(format!("epochs must be between 1 and 10000, not {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return bad(format!("batch size must be between 1 and 65536, not {}", self.batch_size));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return bad(format!("learning rate must be above 0 and at most 10, not {}", self.learning_rate));
        }
        if self.hidden_units > 4096 {
            return bad(format!("the hidden layer can have at most 4096 units, not {}", self.hidden_units));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!("label smoothing must be in [0, 1), not {}", self.label_smoothing));
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return bad(format!("weight decay must be in [0, 1], not {}", self.weight_decay));
        }
        Ok(())
    }
}

/// Loss and accuracy after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    /// `None` when there is no held-out split.
    pub held_out_loss: Option<f32>,
    pub held_out_accuracy: Option<f32>,
}

/// What training leaves: the head's weights and how it did.
#[derive(Debug, Clone)]
pub struct Trained {
    pub labels: Vec<String>,
    /// Photos per class in the dataset (held-out ones included).
    pub photos_per_class: Vec<usize>,
    pub weights: HeadWeights,
    pub history: Vec<EpochReport>,
    /// On the held-out photos, when there were some.
    pub held_out: Option<Evaluation>,
    /// Indices of the held-out photos in the dataset.
    pub held_out_indices: Vec<usize>,
    /// The class predicted for each held-out photo.
    pub held_out_predictions: Vec<usize>,
    /// `true` when stopped before the last epoch.
    pub stopped: bool,
}

/// Head training in progress; call [`Trainer::epoch`] until it returns `None`.
pub struct Trainer {
    config: TrainConfig,
    data: Dataset,
    split: Split,
    /// Training photos and their variants.
    train_samples: Vec<usize>,
    shape: HeadShape,
    /// `None` only while the optimizer holds it during a step.
    head: Option<Head>,
    optimizer: ModuleOptimizer,
    rng: Rng,
    /// Per class, the weight of each of its photos in the loss.
    class_weights: Vec<f32>,
    device: Device,
    history: Vec<EpochReport>,
}

impl Trainer {
    pub fn new(data: Dataset, config: TrainConfig) -> Result<Self> {
        config.check()?;
        data.check_trainable()?;
        let split = if config.holdout { data.split(config.seed) } else { Split { train: (0..data.len()).collect(), held_out: vec![] } };
        let shape = HeadShape { classes: data.labels.len(), hidden: config.hidden_units };
        let mut rng = Rng::new(config.seed);
        let device = Device::flex().autodiff();
        let head = Some(Head::from_weights(&HeadWeights::init(shape, &mut rng), &device));
        let mut adam = AdamConfig::new().with_epsilon(1e-7);
        if config.weight_decay > 0.0 {
            adam = adam.with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay)));
        }
        let mut counts = vec![0usize; shape.classes];
        split.train.iter().for_each(|&i| counts[data.targets[i]] += 1);
        let class_weights = counts
            .iter()
            .map(|&c| if config.balance_classes && c > 0 { split.train.len() as f32 / (shape.classes as f32 * c as f32) } else { 1.0 })
            .collect();
        Ok(Trainer {
            train_samples: data.with_variants(&split.train),
            optimizer: adam.init(),
            config,
            data,
            split,
            shape,
            head,
            rng,
            class_weights,
            device,
            history: vec![],
        })
    }

    /// Run one epoch over the training photos in a seeded random order; `None` once all
    /// epochs have run.
    pub fn epoch(&mut self) -> Option<EpochReport> {
        if self.history.len() >= self.config.epochs {
            return None;
        }
        let mut order = self.train_samples.clone();
        self.rng.shuffle(&mut order);
        for batch in order.chunks(self.config.batch_size) {
            let (x, targets, weights) = self.batch(batch, self.config.label_smoothing, true, &self.device);
            let head = self.head.take().expect("head is back after each step");
            let loss = weighted_cross_entropy(head.forward(x), targets, weights);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            self.head = Some(self.optimizer.step(self.config.learning_rate, head, grads));
        }
        let (train_loss, train_accuracy) = self.measure(&self.split.train);
        let held_out = (!self.split.held_out.is_empty()).then(|| self.measure(&self.split.held_out));
        let report = EpochReport {
            epoch: self.history.len() + 1,
            epochs: self.config.epochs,
            train_loss,
            train_accuracy,
            held_out_loss: held_out.map(|m| m.0),
            held_out_accuracy: held_out.map(|m| m.1),
        };
        self.history.push(report.clone());
        Some(report)
    }

    /// Finish (early or not): the weights and the held-out evaluation.
    pub fn finish(self) -> Trained {
        let stopped = self.history.len() < self.config.epochs;
        let head = self.head.as_ref().expect("head is back after each step").valid();
        let predicted = predict_indices(&head, &self.data, &self.split.held_out);
        let held_out = (!self.split.held_out.is_empty()).then(|| {
            let actual: Vec<usize> = self.split.held_out.iter().map(|&i| self.data.targets[i]).collect();
            Evaluation::new(&self.data.labels, &actual, &predicted)
        });
        Trained {
            photos_per_class: self.data.counts(),
            labels: self.data.labels,
            weights: head.to_weights(self.shape),
            history: self.history,
            held_out,
            held_out_indices: self.split.held_out,
            held_out_predictions: predicted,
            stopped,
        }
    }

    /// Embeddings `[b, 1280]`, target distributions `[b, classes]` and loss weights `[b]`.
    fn batch(&self, indices: &[usize], smoothing: f32, weighted: bool, device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<1>) {
        let classes = self.shape.classes;
        let mut x = Vec::with_capacity(indices.len() * EMBEDDING_DIM);
        let mut targets = vec![smoothing / classes as f32; indices.len() * classes];
        let mut weights = Vec::with_capacity(indices.len());
        for (row, &i) in indices.iter().enumerate() {
            let (embedding, class) = self.data.sample(i);
            x.extend_from_slice(embedding);
            targets[row * classes + class] += 1.0 - smoothing;
            weights.push(if weighted { self.class_weights[class] } else { 1.0 });
        }
        let n = indices.len();
        (
            Tensor::from_data(TensorData::new(x, [n, EMBEDDING_DIM]), device),
            Tensor::from_data(TensorData::new(targets, [n, classes]), device),
            Tensor::from_data(TensorData::new(weights, [n]), device),
        )
    }

    /// Plain (unsmoothed, unweighted) mean cross-entropy and accuracy on `indices`.
    fn measure(&self, indices: &[usize]) -> (f32, f32) {
        let head = self.head.as_ref().expect("head is back after each step").valid();
        let (x, targets, weights) = self.batch(indices, 0.0, false, &Device::flex());
        let logits = head.forward(x);
        let loss = weighted_cross_entropy(logits.clone(), targets, weights);
        let loss = loss.into_scalar::<f32>();
        let predicted = argmax_rows(logits);
        let correct = indices.iter().zip(&predicted).filter(|(&i, &p)| self.data.targets[i] == p).count();
        (loss, correct as f32 / indices.len().max(1) as f32)
    }
}

/// Train to the end, calling `on_epoch` after every epoch; it returns `false` to stop early.
pub fn train(data: Dataset, config: TrainConfig, mut on_epoch: impl FnMut(&EpochReport) -> bool) -> Result<Trained> {
    let mut trainer = Trainer::new(data, config)?;
    while let Some(report) = trainer.epoch() {
        if !on_epoch(&report) {
            break;
        }
    }
    Ok(trainer.finish())
}

/// `sum_i w_i * CE(logits_i, targets_i) / sum_i w_i`, with soft targets.
///
/// # Shapes
///   - Logits  [batch, classes]
///   - Targets [batch, classes], rows sum to 1
///   - Weights [batch]
fn weighted_cross_entropy(logits: Tensor<2>, targets: Tensor<2>, weights: Tensor<1>) -> Tensor<1> {
    let per_photo = (log_softmax(logits, 1) * targets).sum_dim(1).neg(); // [batch, 1]
    let [batch, _] = per_photo.dims();
    let weights_sum = weights.clone().sum();
    (per_photo.reshape([batch]) * weights).sum() / weights_sum
}

/// Index of the largest value of each row (ties: the first).
fn argmax_rows(logits: Tensor<2>) -> Vec<usize> {
    let [_, classes] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_into_vec().expect("f32 logits");
    values
        .chunks(classes)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best }))
        .collect()
}

/// Predicted class of each of `indices`.
fn predict_indices(head: &Head, data: &Dataset, indices: &[usize]) -> Vec<usize> {
    if indices.is_empty() {
        return vec![];
    }
    let device = Device::flex();
    let x: Vec<f32> = indices.iter().flat_map(|&i| data.embedding(i).iter().copied()).collect();
    argmax_rows(head.forward(Tensor::from_data(TensorData::new(x, [indices.len(), EMBEDDING_DIM]), &device)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated clusters in embedding space.
    fn clusters(per_class: usize) -> Dataset {
        let mut rng = Rng::new(7);
        let mut data = Dataset::new(vec!["a".into(), "b".into(), "c".into()]);
        for class in 0..3 {
            for _ in 0..per_class {
                let e: Vec<f32> = (0..EMBEDDING_DIM)
                    .map(|d| rng.next_f32() + if d % 3 == class { 1.0 } else { 0.0 })
                    .collect();
                data.push(&e, class).unwrap();
            }
        }
        data
    }

    #[test]
    fn accuracy_rises_and_training_is_deterministic() {
        let config = TrainConfig { epochs: 10, ..Default::default() };
        let a = train(clusters(20), config.clone(), |_| true).unwrap();
        let b = train(clusters(20), config, |_| true).unwrap();
        assert_eq!(a.weights, b.weights);
        assert!(a.history[0].train_loss > a.history[9].train_loss);
        assert_eq!(a.history[9].train_accuracy, 1.0);
        assert_eq!(a.history[9].held_out_accuracy, Some(1.0));
        assert_eq!(a.held_out.unwrap().accuracy, 1.0);
    }

    #[test]
    fn hidden_layer_trains_and_stop_stops() {
        let config = TrainConfig { epochs: 30, hidden_units: 16, ..Default::default() };
        let trained = train(clusters(10), config, |r| r.epoch < 5).unwrap();
        assert!(trained.stopped);
        assert_eq!(trained.history.len(), 5);
        assert_eq!(trained.weights.layers.len(), 2);
    }

    #[test]
    fn variants_train_but_are_never_held_out() {
        let mut data = clusters(10);
        for photo in 0..data.len() {
            let e = data.embedding(photo).to_vec();
            data.push_variant(&e, photo).unwrap();
        }
        let trainer = Trainer::new(data.clone(), TrainConfig::default()).unwrap();
        assert_eq!(trainer.train_samples.len(), 2 * trainer.split.train.len());
        assert!(trainer.train_samples.iter().all(|&s| s < data.len() || !trainer.split.held_out.contains(&data.variant_of[s - data.len()])));
        let trained = train(data, TrainConfig { epochs: 5, ..Default::default() }, |_| true).unwrap();
        assert_eq!(trained.held_out_predictions.len(), trained.held_out_indices.len());
    }

    #[test]
    fn bad_settings_are_refused() {
        for config in [
            TrainConfig { epochs: 0, ..Default::default() },
            TrainConfig { learning_rate: f64::NAN, ..Default::default() },
            TrainConfig { label_smoothing: 1.0, ..Default::default() },
        ] {
            assert!(matches!(Trainer::new(clusters(5), config), Err(Error::BadConfig(_))));
        }
    }
}
