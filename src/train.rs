//! Train the head on cached embeddings: the class-weighted cross-entropy plus an L2 penalty,
//! minimised over all the photos at once by L-BFGS ([`crate::optimize`]). One [`Trainer::step`]
//! is one L-BFGS step, so that callers can report progress, yield to the browser and stop.
//!
//! Every photo trains (and its augmented variants with it): how well the head will do on new
//! photos is estimated separately, by cross-validation ([`crate::validate`]).

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::head::{forward, HeadShape, HeadWeights};
use crate::matrix::{add_column_sums, argmax_rows, matmul, softmax_rows, Stored};
use crate::optimize::{Advance, Converged, Lbfgs, Objective};
use crate::rng::Rng;

/// Settings of head training, with their defaults and limits. Missing fields take the
/// defaults; unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainConfig {
    /// Units of a hidden ReLU layer; 0 trains a softmax regression.
    pub hidden_units: usize,
    /// Strength of the L2 penalty on the weights; `None` chooses it from the number of photos
    /// ([`auto_penalty`]).
    pub penalty: Option<f32>,
    /// Weight each photo by `n / (classes * n_class)`, so small classes count as much as big.
    pub balance_classes: bool,
    /// Most L-BFGS steps; training usually converges well before.
    pub max_steps: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { hidden_units: 0, penalty: None, balance_classes: true, max_steps: 300, seed: 42 }
    }
}

/// The most units a hidden layer may have.
pub const MAX_HIDDEN_UNITS: usize = 1024;
/// The most L-BFGS steps a training run may take.
pub const MAX_STEPS: usize = 5000;

impl TrainConfig {
    /// Refuse settings out of range, with the range in words.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::BadConfig(what));
        if self.hidden_units > MAX_HIDDEN_UNITS {
            return bad(format!("the hidden layer can have at most {MAX_HIDDEN_UNITS} units, not {}", self.hidden_units));
        }
        if let Some(p) = self.penalty {
            if !(0.0..=100.0).contains(&p) {
                return bad(format!("the penalty must be between 0 and 100, not {p}"));
            }
        }
        if self.max_steps == 0 || self.max_steps > MAX_STEPS {
            return bad(format!("training steps must be between 1 and {MAX_STEPS}, not {}", self.max_steps));
        }
        Ok(())
    }
}

/// The L2 penalty used when the settings leave it open: `1 / (C * samples)` with `C = 1`, the
/// weight scikit-learn's `LogisticRegression` gives by default, which measured at or above
/// every other fixed choice on clothing-small from 1 to 30 photos a class (see README).
pub fn auto_penalty(samples: usize) -> f32 {
    1.0 / samples.max(1) as f32
}

/// What one [`Trainer::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Ended an optimiser step.
    Step(StepReport),
    /// Evaluated a point its line search did not take; the step goes on.
    Searching,
}

/// Loss and training accuracy after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// 1-based.
    pub step: usize,
    pub max_steps: usize,
    /// The minimised loss: weighted cross-entropy plus the penalty.
    pub loss: f32,
    /// On the training photos (not a measure of how good the head is: see cross-validation).
    pub train_accuracy: f32,
}

/// What training leaves: the head's weights and how it got there.
#[derive(Debug, Clone)]
pub struct Trained {
    pub labels: Vec<String>,
    /// Photos per class trained on.
    pub photos_per_class: Vec<usize>,
    pub weights: HeadWeights,
    pub history: Vec<StepReport>,
    /// The L2 penalty used.
    pub penalty: f32,
    /// `true` when stopped before the optimiser converged.
    pub stopped: bool,
}

/// Head training in progress; call [`Trainer::step`] until it returns `None`.
pub struct Trainer {
    config: TrainConfig,
    labels: Vec<String>,
    photos_per_class: Vec<usize>,
    objective: Loss,
    optimizer: Lbfgs,
    history: Vec<StepReport>,
}

impl Trainer {
    /// Train on every photo of `data` and their variants.
    pub fn new(data: &Dataset, config: TrainConfig) -> Result<Self> {
        data.check_trainable()?;
        let photos: Vec<usize> = (0..data.len()).collect();
        Self::on(data, &photos, config, None)
    }

    /// Train on some photos of `data` (and their variants), for cross-validation: classes
    /// without a photo among them are allowed and simply never predicted. `start`: weights to
    /// start from (of this shape), else the seed's random ones.
    pub fn on(data: &Dataset, photos: &[usize], config: TrainConfig, start: Option<&HeadWeights>) -> Result<Self> {
        config.check()?;
        let samples = data.with_variants(photos);
        let shape = HeadShape { classes: data.labels.len(), hidden: config.hidden_units };
        let mut counts = vec![0usize; shape.classes];
        photos.iter().for_each(|&i| counts[data.targets[i]] += 1);
        let mut x = Vec::with_capacity(samples.len() * EMBEDDING_DIM);
        let mut targets = Vec::with_capacity(samples.len());
        for &s in &samples {
            let (embedding, class) = data.sample(s);
            x.extend_from_slice(embedding);
            targets.push(class);
        }
        let present = counts.iter().filter(|&&c| c > 0).count() as f32;
        let weights: Vec<f32> = targets
            .iter()
            .map(|&t| if config.balance_classes { photos.len() as f32 / (present * counts[t] as f32) } else { 1.0 })
            .collect();
        let penalty = config.penalty.unwrap_or_else(|| auto_penalty(samples.len()));
        let mut objective = Loss::new(shape, x, targets, weights, penalty);
        let start = match start {
            Some(weights) if weights.shape == shape => weights.to_flat(),
            _ => HeadWeights::init(shape, &mut Rng::new(config.seed)).to_flat(),
        };
        let optimizer = Lbfgs::new(&mut objective, start, 1e-5);
        Ok(Trainer { config, labels: data.labels.clone(), photos_per_class: counts, objective, optimizer, history: vec![] })
    }

    /// One evaluation of the loss (an optimiser step takes one or more): the step's report
    /// when it ended one, [`Work::Searching`] while its line search goes on, `None` once
    /// converged or out of steps. One evaluation at a time, so that on 40,000 rows (10,000
    /// photos in four views) a stop waits for one pass over them, not for a whole step.
    pub fn step(&mut self) -> Option<Work> {
        if self.history.len() >= self.config.max_steps {
            return None;
        }
        match self.optimizer.advance(&mut self.objective) {
            Advance::Done => None,
            Advance::Searching => Some(Work::Searching),
            Advance::Stepped => {
                let report = StepReport {
                    step: self.history.len() + 1,
                    max_steps: self.config.max_steps,
                    loss: self.optimizer.value as f32,
                    // The accepted point is the one last evaluated.
                    train_accuracy: self.objective.last_accuracy,
                };
                self.history.push(report.clone());
                Some(Work::Step(report))
            }
        }
    }

    /// Finish (early or not).
    pub fn finish(self) -> Trained {
        let stopped = self.optimizer.converged == Converged::No && self.history.len() < self.config.max_steps;
        Trained {
            labels: self.labels,
            photos_per_class: self.photos_per_class,
            weights: HeadWeights::from_flat(self.objective.shape, &self.optimizer.x),
            history: self.history,
            penalty: self.objective.penalty,
            stopped,
        }
    }
}

/// Train to the end, calling `on_step` after every step; it returns `false` to stop early.
pub fn train(data: &Dataset, config: TrainConfig, mut on_step: impl FnMut(&StepReport) -> bool) -> Result<Trained> {
    let mut trainer = Trainer::new(data, config)?;
    while let Some(work) = trainer.step() {
        if let Work::Step(report) = work {
            if !on_step(&report) {
                break;
            }
        }
    }
    Ok(trainer.finish())
}

/// The minimised function: `sum_i w_i CE(head(x_i), y_i) / sum_i w_i + penalty / 2 * |weights|^2`
/// (biases are not penalised), with its gradient by hand-written backpropagation.
pub struct Loss {
    pub shape: HeadShape,
    /// `[n, 1280]`.
    x: Vec<f32>,
    targets: Vec<usize>,
    /// Per sample, its weight divided by the sum of weights.
    weights: Vec<f32>,
    pub penalty: f32,
    /// The training accuracy at the point last evaluated (kept from its forward pass).
    last_accuracy: f32,
}

impl Loss {
    pub fn new(shape: HeadShape, x: Vec<f32>, targets: Vec<usize>, weights: Vec<f32>, penalty: f32) -> Self {
        let total: f32 = weights.iter().sum();
        let weights = weights.iter().map(|w| w / total.max(f32::MIN_POSITIVE)).collect();
        Loss { shape, x, targets, weights, penalty, last_accuracy: 0.0 }
    }

    fn layers(&self, flat: &[f32]) -> Vec<(Vec<f32>, Vec<f32>)> {
        HeadWeights::from_flat(self.shape, flat).layers
    }

}

impl Objective for Loss {
    fn evaluate(&mut self, flat: &[f32], gradient: &mut [f32]) -> f64 {
        let shape = self.shape;
        let (n, k) = (self.targets.len(), shape.classes);
        let layers = self.layers(flat);
        let (hidden, mut p) = forward(shape, &layers, &self.x);
        let right = argmax_rows(&p, k).iter().zip(&self.targets).filter(|(p, t)| p == t).count();
        self.last_accuracy = right as f32 / n.max(1) as f32;
        // Cross-entropy from log-softmax (stable), then p becomes softmax - onehot, weighted.
        let mut loss = 0.0f64;
        for (i, row) in p.chunks_exact_mut(k).enumerate() {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = row.iter().map(|&z| ((z - max) as f64).exp()).sum::<f64>().ln() + max as f64;
            loss += self.weights[i] as f64 * (log_sum - row[self.targets[i]] as f64);
        }
        softmax_rows(&mut p, k);
        for (i, row) in p.chunks_exact_mut(k).enumerate() {
            row[self.targets[i]] -= 1.0;
            row.iter_mut().for_each(|v| *v *= self.weights[i]);
        }
        // Backward, layer by layer, into the flat gradient (same layout as the weights).
        let dims = shape.layer_dims();
        let mut offsets = vec![];
        let mut at = 0;
        for &(i, o) in &dims {
            offsets.push(at);
            at += i * o + o;
        }
        let output = dims.len() - 1;
        let (inputs, outputs) = dims[output];
        let input: &[f32] = if shape.hidden > 0 { &hidden } else { &self.x };
        {
            let (gw, gb) = gradient[offsets[output]..offsets[output] + inputs * outputs + outputs].split_at_mut(inputs * outputs);
            matmul(gw, false, input, Stored::Transposed, &p, Stored::AsIs, inputs, n, outputs);
            gb.fill(0.0);
            add_column_sums(gb, &p);
        }
        if shape.hidden > 0 {
            let h = shape.hidden;
            let mut dh = vec![0.0; n * h];
            matmul(&mut dh, false, &p, Stored::AsIs, &layers[1].0, Stored::Transposed, n, k, h);
            dh.iter_mut().zip(&hidden).for_each(|(d, &a)| if a <= 0.0 { *d = 0.0 });
            let (gw, gb) = gradient[..EMBEDDING_DIM * h + h].split_at_mut(EMBEDDING_DIM * h);
            matmul(gw, false, &self.x, Stored::Transposed, &dh, Stored::AsIs, EMBEDDING_DIM, n, h);
            gb.fill(0.0);
            add_column_sums(gb, &dh);
        }
        // The penalty, on weights only.
        for ((w, _), (&offset, &(i, o))) in layers.iter().zip(offsets.iter().zip(&dims)) {
            loss += 0.5 * self.penalty as f64 * crate::matrix::dot(w, w);
            gradient[offset..offset + i * o].iter_mut().zip(w).for_each(|(g, &w)| *g += self.penalty * w);
        }
        loss
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three well-separated clusters in embedding space.
    pub(crate) fn clusters(per_class: usize, seed: u64) -> Dataset {
        let mut rng = Rng::new(seed);
        let mut data = Dataset::new(vec!["a".into(), "b".into(), "c".into()]);
        for class in 0..3 {
            for _ in 0..per_class {
                let e: Vec<f32> = (0..EMBEDDING_DIM).map(|d| rng.next_f32() + if d % 3 == class { 0.3 } else { 0.0 }).collect();
                data.push(&e, class).unwrap();
            }
        }
        data
    }

    /// The oracle: the same loss written with Burn's tensors, its gradient by Burn's autodiff.
    struct BurnLoss {
        shape: HeadShape,
        data: Dataset,
        weights: Vec<f32>,
        penalty: f32,
    }

    impl Objective for BurnLoss {
        fn evaluate(&mut self, flat: &[f32], gradient: &mut [f32]) -> f64 {
            use burn::prelude::*;
            use burn::tensor::activation::{log_softmax, relu};
            let device = Device::flex().autodiff();
            let (n, k) = (self.data.len(), self.shape.classes);
            let dims = self.shape.layer_dims();
            let params: Vec<(Tensor<2>, Tensor<1>)> = HeadWeights::from_flat(self.shape, flat)
                .layers
                .into_iter()
                .zip(&dims)
                .map(|((w, b), &(i, o))| {
                    (
                        Tensor::from_data(TensorData::new(w, [i, o]), &device).require_grad(),
                        Tensor::from_data(TensorData::new(b, [o]), &device).require_grad(),
                    )
                })
                .collect();
            let mut h = Tensor::<2>::from_data(TensorData::new(self.data.embeddings.clone(), [n, EMBEDDING_DIM]), &device);
            for (l, (w, b)) in params.iter().enumerate() {
                h = h.matmul(w.clone()) + b.clone().unsqueeze::<2>();
                if l + 1 < params.len() {
                    h = relu(h);
                }
            }
            let mut onehot = vec![0.0f32; n * k];
            self.data.targets.iter().enumerate().for_each(|(i, &t)| onehot[i * k + t] = 1.0);
            let total: f32 = self.weights.iter().sum();
            let w: Vec<f32> = self.weights.iter().map(|w| w / total).collect();
            let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, k]), &device);
            let w = Tensor::<1>::from_data(TensorData::new(w, [n]), &device);
            let ce = (log_softmax(h, 1) * onehot).sum_dim(1).reshape([n]).neg();
            let mut loss = (ce * w).sum();
            for (weight, _) in &params {
                loss = loss + weight.clone().powf_scalar(2.0).sum() * (0.5 * self.penalty);
            }
            let grads = loss.backward();
            let mut at = 0;
            for (weight, bias) in &params {
                for g in [weight.grad(&grads).unwrap().into_data(), bias.grad(&grads).unwrap().into_data()] {
                    let g: Vec<f32> = g.try_into_vec().unwrap();
                    gradient[at..at + g.len()].copy_from_slice(&g);
                    at += g.len();
                }
            }
            loss.into_scalar::<f32>() as f64
        }
    }

    #[test]
    fn loss_gradient_and_training_match_burn_autodiff() {
        let data = clusters(6, 2);
        let weights: Vec<f32> = [1.0, 2.0, 1.0, 1.0, 3.0, 1.0].repeat(3);
        for hidden in [0, 6] {
            let shape = HeadShape { classes: 3, hidden };
            let mut ours = Loss::new(shape, data.embeddings.clone(), data.targets.clone(), weights.clone(), 0.05);
            let mut oracle = BurnLoss { shape, data: data.clone(), weights: weights.clone(), penalty: 0.05 };
            let mut rng = Rng::new(11);
            let x: Vec<f32> = (0..shape.parameter_count()).map(|_| (rng.next_f32() - 0.5) * 0.2).collect();
            let (mut g1, mut g2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let (v1, v2) = (ours.evaluate(&x, &mut g1), oracle.evaluate(&x, &mut g2));
            assert!((v1 - v2).abs() < 1e-5 * v2.abs().max(1.0), "hidden {hidden}: loss {v1} vs Burn's {v2}");
            let scale = g2.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
                assert!((a - b).abs() <= 1e-4 * scale, "hidden {hidden}, gradient {i}: {a} vs Burn's {b}");
            }
            // Trained to the end with either gradient: the same minimum and the same answers.
            let start = HeadWeights::init(shape, &mut Rng::new(1)).to_flat();
            let run = |objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64| {
                struct F<'a>(&'a mut dyn FnMut(&[f32], &mut [f32]) -> f64);
                impl Objective for F<'_> {
                    fn evaluate(&mut self, x: &[f32], g: &mut [f32]) -> f64 {
                        (self.0)(x, g)
                    }
                }
                let mut f = F(objective);
                let mut opt = Lbfgs::new(&mut f, start.clone(), 1e-5);
                for _ in 0..200 {
                    if !opt.step(&mut f) {
                        break;
                    }
                }
                (opt.value, opt.x)
            };
            let (ours_min, ours_x) = run(&mut |x, g| ours.evaluate(x, g));
            let (burn_min, burn_x) = run(&mut |x, g| oracle.evaluate(x, g));
            assert!((ours_min - burn_min).abs() < 1e-3 * burn_min.abs().max(1e-2), "hidden {hidden}: minimum {ours_min} vs Burn's {burn_min}");
            let answers = |x: &[f32]| argmax_rows(&HeadWeights::from_flat(shape, x).logits(&data.embeddings), 3);
            assert_eq!(answers(&ours_x), answers(&burn_x));
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = clusters(4, 1);
        for hidden in [0, 5] {
            let shape = HeadShape { classes: 3, hidden };
            let mut loss = Loss::new(shape, data.embeddings.clone(), data.targets.clone(), [1.0, 2.0, 1.0, 1.0].repeat(3), 0.1);
            let mut rng = Rng::new(9);
            let x: Vec<f32> = (0..shape.parameter_count()).map(|_| (rng.next_f32() - 0.5) * 0.1).collect();
            let mut g = vec![0.0; x.len()];
            loss.evaluate(&x, &mut g);
            let mut scratch = vec![0.0; x.len()];
            for index in [0, 7, 1280 * 2 + 1, x.len() - 1, x.len() - 4] {
                let eps = 1e-3;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[index] += eps;
                down[index] -= eps;
                let numeric = (loss.evaluate(&up, &mut scratch) - loss.evaluate(&down, &mut scratch)) / (2.0 * eps as f64);
                assert!((numeric - g[index] as f64).abs() < 2e-3 * numeric.abs().max(1e-2), "hidden {hidden}, index {index}: {numeric} vs {}", g[index]);
            }
        }
    }

    #[test]
    fn separates_clusters_and_is_deterministic() {
        let data = clusters(20, 7);
        let a = train(&data, TrainConfig::default(), |_| true).unwrap();
        let b = train(&data, TrainConfig::default(), |_| true).unwrap();
        assert_eq!(a.weights, b.weights);
        assert!(!a.stopped);
        assert!(a.history.first().unwrap().loss > a.history.last().unwrap().loss);
        assert_eq!(a.history.last().unwrap().train_accuracy, 1.0);
        let test = clusters(20, 8);
        let predicted = argmax_rows(&a.weights.logits(&test.embeddings), 3);
        assert_eq!(predicted, test.targets);
    }

    #[test]
    fn hidden_layer_trains_and_stop_stops() {
        let data = clusters(10, 7);
        let config = TrainConfig { hidden_units: 16, ..Default::default() };
        let trained = train(&data, config.clone(), |r| r.step < 5).unwrap();
        assert!(trained.stopped);
        assert_eq!(trained.history.len(), 5);
        assert_eq!(trained.weights.layers.len(), 2);
        let full = train(&data, config, |_| true).unwrap();
        assert_eq!(full.history.last().unwrap().train_accuracy, 1.0);
    }

    #[test]
    fn bad_settings_are_refused() {
        for config in [
            TrainConfig { max_steps: 0, ..Default::default() },
            TrainConfig { penalty: Some(f32::NAN), ..Default::default() },
            TrainConfig { penalty: Some(-1.0), ..Default::default() },
            TrainConfig { hidden_units: MAX_HIDDEN_UNITS + 1, ..Default::default() },
        ] {
            assert!(matches!(Trainer::new(&clusters(5, 1), config), Err(Error::BadConfig(_))));
        }
        let unknown: std::result::Result<TrainConfig, _> = serde_json::from_str(r#"{"epochs": 50}"#);
        assert!(unknown.is_err());
    }
}
