//! The classification head, the only part that is trained: embeddings `[n, 1280]` → logits
//! `[n, classes]`. Softmax regression by default; optionally one hidden ReLU layer, as
//! Teachable Machine's Dense(100, ReLU). Plain matrix products on flat slices ([`crate::matrix`]):
//! the same code predicts in the CLI, the page and inside the trainer.

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::matrix::{add_row, matmul, Stored};
use crate::rng::Rng;

/// The length every embedding is scaled to before the head reads it: the square root of its
/// 1,280 numbers, so that each is about 1 in size (MobileNetV2's pooled embeddings are 20 to 40
/// long). One length for every photo makes the head compare directions rather than how strongly
/// the backbone responded: on clothing-small, +2.5 points at one photo a class and within
/// ±0.5 from 5 to 30 (README "Learning"). The trainer's penalty is for embeddings of this length.
pub fn input_length() -> f32 {
    (EMBEDDING_DIM as f32).sqrt()
}

/// Scale each embedding of `rows` (`[n * 1280]`) to [`input_length`]; one of all zeros stays
/// zeros. Scaling twice is scaling once.
pub fn scale_to_input_length(rows: &mut [f32]) {
    let length = input_length();
    for row in rows.chunks_exact_mut(EMBEDDING_DIM) {
        let norm = crate::matrix::dot(row, row).sqrt() as f32;
        if norm > 0.0 {
            let factor = length / norm;
            row.iter_mut().for_each(|v| *v *= factor);
        }
    }
}

/// The shape of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadShape {
    pub classes: usize,
    /// Units of the hidden layer; 0 for none.
    pub hidden: usize,
}

impl HeadShape {
    /// (inputs, outputs) of each layer.
    pub fn layer_dims(self) -> Vec<(usize, usize)> {
        if self.hidden == 0 {
            vec![(EMBEDDING_DIM, self.classes)]
        } else {
            vec![(EMBEDDING_DIM, self.hidden), (self.hidden, self.classes)]
        }
    }

    /// Number of trained values: every weight and bias.
    pub fn parameter_count(self) -> usize {
        self.layer_dims().iter().map(|(i, o)| i * o + o).sum()
    }
}

/// The head's weights as plain arrays, each layer's weight `[inputs, outputs]` row-major: what
/// a model file stores.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWeights {
    pub shape: HeadShape,
    /// (weight `[inputs * outputs]`, bias `[outputs]`) for the hidden layer, if any, then the output.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl HeadWeights {
    /// Starting weights. A softmax regression starts at zero (its loss is convex: the start does
    /// not matter, and zero is the same everywhere); a hidden layer starts uniform in
    /// ±1/sqrt(inputs) from a seeded generator, the output layer after it at zero.
    pub fn init(shape: HeadShape, rng: &mut Rng) -> Self {
        let layers = shape
            .layer_dims()
            .into_iter()
            .enumerate()
            .map(|(i, (inputs, outputs))| {
                let random = shape.hidden > 0 && i == 0;
                let bound = 1.0 / (inputs as f32).sqrt();
                let weight = (0..inputs * outputs).map(|_| if random { (rng.next_f32() * 2.0 - 1.0) * bound } else { 0.0 }).collect();
                (weight, vec![0.0; outputs])
            })
            .collect();
        HeadWeights { shape, layers }
    }

    /// All values in one vector: each layer's weight, then its bias (the optimiser's view).
    pub fn to_flat(&self) -> Vec<f32> {
        self.layers.iter().flat_map(|(w, b)| w.iter().chain(b)).copied().collect()
    }

    /// The inverse of [`HeadWeights::to_flat`].
    pub fn from_flat(shape: HeadShape, flat: &[f32]) -> Self {
        let mut rest = flat;
        let layers = shape
            .layer_dims()
            .into_iter()
            .map(|(inputs, outputs)| {
                let (w, tail) = rest.split_at(inputs * outputs);
                let (b, tail) = tail.split_at(outputs);
                rest = tail;
                (w.to_vec(), b.to_vec())
            })
            .collect();
        HeadWeights { shape, layers }
    }

    /// Logits `[n, classes]` of `n` embeddings `[n, 1280]`.
    pub fn logits(&self, embeddings: &[f32]) -> Vec<f32> {
        forward(self.shape, &self.layers, embeddings).1
    }
}

/// The forward pass on flat layers: (hidden activations `[n, hidden]`, empty without a hidden
/// layer; logits `[n, classes]`). The trainer keeps the activations for the backward pass.
pub fn forward(shape: HeadShape, layers: &[(Vec<f32>, Vec<f32>)], embeddings: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = embeddings.len() / EMBEDDING_DIM;
    let mut input = embeddings;
    let mut hidden = vec![];
    if shape.hidden > 0 {
        let (w, b) = &layers[0];
        hidden = vec![0.0; n * shape.hidden];
        matmul(&mut hidden, false, embeddings, Stored::AsIs, w, Stored::AsIs, n, EMBEDDING_DIM, shape.hidden);
        add_row(&mut hidden, b);
        hidden.iter_mut().for_each(|h| *h = h.max(0.0));
        input = &hidden;
    }
    let (w, b) = layers.last().expect("a head has an output layer");
    let inputs = input.len() / n.max(1);
    let mut logits = vec![0.0; n * shape.classes];
    matmul(&mut logits, false, input, Stored::AsIs, w, Stored::AsIs, n, inputs, shape.classes);
    add_row(&mut logits, b);
    (hidden, logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_round_trips_and_counts_every_parameter() {
        for hidden in [0, 7] {
            let shape = HeadShape { classes: 3, hidden };
            let weights = HeadWeights::init(shape, &mut Rng::new(1));
            let flat = weights.to_flat();
            assert_eq!(flat.len(), shape.parameter_count());
            assert_eq!(HeadWeights::from_flat(shape, &flat), weights);
        }
    }

    #[test]
    fn embeddings_are_scaled_to_one_length_once() {
        let mut rows: Vec<f32> = (0..2 * EMBEDDING_DIM).map(|i| (i % 7) as f32 - 2.0).collect();
        rows.extend(vec![0.0; EMBEDDING_DIM]);
        let direction = rows[1] / rows[0];
        scale_to_input_length(&mut rows);
        for row in rows.chunks_exact(EMBEDDING_DIM).take(2) {
            let length = crate::matrix::dot(row, row).sqrt() as f32;
            assert!((length - input_length()).abs() < 1e-3, "{length}");
        }
        assert!((rows[1] / rows[0] - direction).abs() < 1e-6, "the direction is kept");
        assert!(rows[2 * EMBEDDING_DIM..].iter().all(|&v| v == 0.0), "zeros stay zeros");
        let once = rows.clone();
        scale_to_input_length(&mut rows);
        assert!(rows.iter().zip(&once).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn logits_are_the_affine_map() {
        let shape = HeadShape { classes: 2, hidden: 0 };
        let mut weights = HeadWeights::init(shape, &mut Rng::new(1));
        weights.layers[0].0[0] = 2.0; // input 0 → class 0
        weights.layers[0].0[3] = -1.0; // input 1 → class 1
        weights.layers[0].1 = vec![0.5, 0.25];
        let mut x = vec![0.0; 2 * EMBEDDING_DIM];
        x[0] = 1.0;
        x[EMBEDDING_DIM + 1] = 3.0;
        assert_eq!(weights.logits(&x), vec![2.5, 0.25, 0.5, -2.75]);
    }
}
