//! The frozen, pre-trained backbone: MobileNetV2 1.0 at 224 px, read from its TFLite file.
//!
//! `embed` turns a batch of preprocessed photos into 1280-d embeddings (the average-pooled
//! output of the last 1x1 convolution), the features a head is trained on; `imagenet_logits`
//! applies the network's own 1001-way ImageNet classifier to an embedding.

mod blocks;
pub mod kernels;
pub mod tflite;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::error::{Error, Result};
use blocks::{ConvAct, InvertedResidual};
use tflite::{ConvOp, Op};

/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 1280;
/// Classes of the backbone's own classifier (index 0 is "background").
pub const IMAGENET_CLASSES: usize = 1001;
/// sha256 of the published `mobilenet_v2_1.0_224_quant.tflite`, from `weights.sha256` (in
/// `sha256sum` format), which `build.sh` checks downloads against and the page asks the engine for.
pub const KNOWN_SHA256: &str = {
    let (hash, _) = include_str!("weights.sha256").as_bytes().split_at(64);
    match std::str::from_utf8(hash) {
        Ok(hash) => hash,
        Err(_) => panic!("weights.sha256 must start with a hex sha256"),
    }
};

/// The backbone's 1001 ImageNet class names, short form ("macaw", not "macaw, ara").
pub fn imagenet_labels() -> Vec<String> {
    include_str!("../imagenet_labels.txt").lines().map(|l| l.split(',').next().unwrap_or(l).to_string()).collect()
}

/// The inverted-residual stages of MobileNetV2 1.0: (expansion, channels, repeats, stride),
/// table 2 of Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks".
const STAGES: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// MobileNetV2 without its batch norms (folded) and with its classifier kept apart.
#[derive(Module, Debug)]
pub struct Backbone {
    stem: ConvAct,
    blocks: Vec<InvertedResidual>,
    features: ConvAct,
    classifier: Linear,
}

/// What one convolution of the architecture must look like in the file.
struct Expected {
    name: String,
    depthwise: bool,
    shape: [usize; 4],
    stride: usize,
    relu6: bool,
}

fn conv(name: String, inputs: usize, outputs: usize, k: usize, stride: usize, relu6: bool) -> Expected {
    Expected { name, depthwise: false, shape: [outputs, k, k, inputs], stride, relu6 }
}

/// Every convolution of MobileNetV2 1.0 in graph order, and how many blocks add their input.
fn architecture() -> (Vec<Expected>, usize) {
    let mut convs = vec![conv("the first convolution".into(), 3, 32, 3, 2, true)];
    let (mut channels, mut residuals, mut block) = (32, 0, 0);
    for (expansion, out, repeats, first_stride) in STAGES {
        for r in 0..repeats {
            let hidden = channels * expansion;
            let name = |part: &str| format!("block {block} ({part})");
            if expansion != 1 {
                convs.push(conv(name("expand"), channels, hidden, 1, 1, true));
            }
            let stride = if r == 0 { first_stride } else { 1 };
            convs.push(Expected {
                name: name("depthwise"),
                depthwise: true,
                shape: [1, 3, 3, hidden],
                stride,
                relu6: true,
            });
            convs.push(conv(name("project"), hidden, out, 1, 1, false));
            if stride == 1 && channels == out {
                residuals += 1;
            }
            channels = out;
            block += 1;
        }
    }
    convs.push(conv("the last 1x1 convolution".into(), channels, EMBEDDING_DIM, 1, 1, true));
    convs.push(conv("the ImageNet classifier".into(), EMBEDDING_DIM, IMAGENET_CLASSES, 1, 1, false));
    (convs, residuals)
}

/// An inverted-residual block's shape: whether it has an expansion, whether it adds its input.
type BlockShape = (bool, bool);

/// The file's convolutions in graph order, each checked against MobileNetV2 1.0, and each
/// inverted-residual block's shape.
fn checked_convolutions(ops: &[Op]) -> Result<(Vec<&ConvOp>, Vec<BlockShape>)> {
    let (expected, residuals) = architecture();
    let convs: Vec<&ConvOp> = ops.iter().filter_map(|op| if let Op::Conv(c) = op { Some(c) } else { None }).collect();
    let adds = ops.iter().filter(|op| matches!(op, Op::Add)).count();
    if convs.len() != expected.len() || adds != residuals {
        return Err(Error::Weights(format!(
            "expected {} convolutions and {residuals} residual additions, found {} and {adds}",
            expected.len(),
            convs.len()
        )));
    }
    if !ops.iter().any(|op| matches!(op, Op::AveragePool)) {
        return Err(Error::Weights("the model has no average pooling".into()));
    }
    for (op, want) in convs.iter().zip(&expected) {
        let fits = op.depthwise == want.depthwise
            && op.weight_shape == want.shape
            && op.bias.len() == if want.depthwise { want.shape[3] } else { want.shape[0] }
            && op.stride == want.stride
            && op.relu6 == want.relu6
            && op.same_padding;
        if !fits {
            let describe = |depthwise: bool, shape: &[usize], stride: usize, relu6: bool| {
                format!(
                    "a {} of weights {shape:?}, stride {stride}, {}",
                    if depthwise { "depthwise convolution" } else { "convolution" },
                    if relu6 { "ReLU6" } else { "no activation" }
                )
            };
            return Err(Error::Weights(format!(
                "{} should be {} and SAME padding; the file has {}, {} padding and {} biases",
                want.name,
                describe(want.depthwise, &want.shape, want.stride, want.relu6),
                describe(op.depthwise, &op.weight_shape, op.stride, op.relu6),
                if op.same_padding { "SAME" } else { "VALID" },
                op.bias.len(),
            )));
        }
    }
    let mut blocks = Vec::new();
    let mut channels = 32;
    for (expansion, out, repeats, first_stride) in STAGES {
        for r in 0..repeats {
            let stride = if r == 0 { first_stride } else { 1 };
            blocks.push((expansion != 1, stride == 1 && channels == out));
            channels = out;
        }
    }
    Ok((convs, blocks))
}

impl Backbone {
    /// Read `mobilenet_v2_1.0_224_quant.tflite` (or a file of the same architecture) and build
    /// the module on `device`.
    pub fn from_tflite(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_ops(&tflite::read_ops(bytes)?, device)
    }

    /// Build from the operators of a TFLite graph, checking each against MobileNetV2 1.0.
    pub fn from_ops(ops: &[Op], device: &Device) -> Result<Self> {
        let (convs, shapes) = checked_convolutions(ops)?;
        let mut convs = convs.into_iter();
        let mut next = || ConvAct::from_op(convs.next().expect("counted above"), device);
        let stem = next();
        let mut blocks = Vec::new();
        for (expands, residual) in shapes {
            let expand = expands.then(&mut next);
            let depthwise = next();
            let project = next();
            blocks.push(InvertedResidual::new(expand, depthwise, project, residual));
        }
        let features = next();
        let logits = convs.next().expect("counted above");
        // A 1x1 convolution on a 1x1 map is a linear layer: [1001, 1, 1, 1280] -> [1280, 1001].
        let mut weight = vec![0.0; EMBEDDING_DIM * IMAGENET_CLASSES];
        for o in 0..IMAGENET_CLASSES {
            for i in 0..EMBEDDING_DIM {
                weight[i * IMAGENET_CLASSES + o] = logits.weight[o * EMBEDDING_DIM + i];
            }
        }
        let mut classifier = LinearConfig::new(EMBEDDING_DIM, IMAGENET_CLASSES).init(device);
        classifier.weight =
            Param::from_tensor(Tensor::from_data(TensorData::new(weight, [EMBEDDING_DIM, IMAGENET_CLASSES]), device));
        classifier.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(logits.bias.clone(), [IMAGENET_CLASSES]),
            device,
        )));
        Ok(Backbone { stem, blocks, features, classifier })
    }

    /// # Shapes
    ///   - Images    [batch, 3, 224, 224], normalised to [-1, 1]
    ///   - Embedding [batch, 1280]
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        pool(self.feature_map(images))
    }

    /// The last feature map, before pooling: what each region of the photo looks like to the
    /// backbone (the embedding is its average).
    ///
    /// # Shapes
    ///   - Images      [batch, 3, 224, 224]
    ///   - Feature map [batch, 1280, 7, 7]
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.features.forward(x)
    }

    /// The backbone's own ImageNet logits for embeddings.
    ///
    /// # Shapes
    ///   - Embedding [batch, 1280]
    ///   - Logits    [batch, 1001]
    pub fn imagenet_logits(&self, embedding: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(embedding)
    }
}

/// Average over the regions: `[batch, 1280, 7, 7]` → `[batch, 1280]`.
pub fn pool(map: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = map.dims();
    map.mean_dim(3).mean_dim(2).reshape([batch, channels])
}

/// Side of the last feature map: 7x7 regions of 32x32 pixels of the 224x224 input.
pub const FEATURE_SIDE: usize = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_has_17_blocks_and_10_residuals() {
        let (convs, residuals) = architecture();
        assert_eq!(convs.len(), 1 + 2 + 16 * 3 + 2);
        assert_eq!(residuals, 10);
    }
}
