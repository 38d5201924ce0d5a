//! The classification head, the only part that is trained: embeddings `[n, 1280]` → logits
//! `[n, classes]`. Softmax regression by default; optionally one hidden ReLU layer, as
//! Teachable Machine's Dense(100, ReLU).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::rng::Rng;

/// The shape of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadShape {
    pub classes: usize,
    /// Units of the hidden layer; 0 for none.
    pub hidden: usize,
}

/// A linear classifier, or a one-hidden-layer perceptron.
#[derive(Module, Debug)]
pub struct Head {
    hidden: Option<Linear>,
    output: Linear,
}

/// The head's weights as plain arrays, in Burn's `[inputs, outputs]` layout: what a model
/// file stores.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWeights {
    pub shape: HeadShape,
    /// (weight `[inputs * outputs]`, bias `[outputs]`) for the hidden layer, if any, then the output.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl HeadWeights {
    /// Fresh weights: uniform in ±1/sqrt(inputs) (Kaiming-uniform with gain 1/sqrt 3, as
    /// Burn's `Linear` default), biases zero, from a seeded generator.
    pub fn init(shape: HeadShape, rng: &mut Rng) -> Self {
        let mut layers = Vec::new();
        let mut inputs = EMBEDDING_DIM;
        for outputs in [shape.hidden, shape.classes] {
            if outputs == 0 {
                continue;
            }
            let bound = 1.0 / (inputs as f32).sqrt();
            let weight = (0..inputs * outputs).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
            layers.push((weight, vec![0.0; outputs]));
            inputs = outputs;
        }
        HeadWeights { shape, layers }
    }

    /// (inputs, outputs) of each layer.
    pub fn layer_dims(shape: HeadShape) -> Vec<(usize, usize)> {
        if shape.hidden == 0 {
            vec![(EMBEDDING_DIM, shape.classes)]
        } else {
            vec![(EMBEDDING_DIM, shape.hidden), (shape.hidden, shape.classes)]
        }
    }
}

impl Head {
    /// Build the module on `device` from plain weights.
    pub fn from_weights(weights: &HeadWeights, device: &Device) -> Self {
        let mut layers = HeadWeights::layer_dims(weights.shape)
            .into_iter()
            .zip(&weights.layers)
            .map(|((inputs, outputs), (w, b))| {
                let mut linear = LinearConfig::new(inputs, outputs).init(device);
                linear.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w.clone(), [inputs, outputs]), device));
                linear.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(b.clone(), [outputs]), device)));
                linear
            })
            .collect::<Vec<_>>();
        let output = layers.pop().expect("a head has an output layer");
        Head { hidden: layers.pop(), output }
    }

    /// Read the weights back (synchronously: the head lives on the CPU device).
    pub fn to_weights(&self, shape: HeadShape) -> HeadWeights {
        let read = |linear: &Linear| {
            let w = linear.weight.val().into_data().try_into_vec::<f32>().expect("f32 weights");
            let b = linear.bias.as_ref().expect("bias").val().into_data().try_into_vec::<f32>().expect("f32 bias");
            (w, b)
        };
        let mut layers: Vec<_> = self.hidden.iter().map(read).collect();
        layers.push(read(&self.output));
        HeadWeights { shape, layers }
    }

    /// # Shapes
    ///   - Embeddings [batch, 1280]
    ///   - Logits     [batch, classes]
    pub fn forward(&self, embeddings: Tensor<2>) -> Tensor<2> {
        match &self.hidden {
            Some(hidden) => self.output.forward(burn::tensor::activation::relu(hidden.forward(embeddings))),
            None => self.output.forward(embeddings),
        }
    }
}
