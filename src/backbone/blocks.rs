//! The building blocks of MobileNetV2: a convolution with optional ReLU6, and the inverted
//! residual block (expand 1x1 → depthwise 3x3 → project 1x1, plus the input when shapes allow).
//! Batch norm is already folded into the TFLite weights, so every convolution has a bias.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

use super::tflite::ConvOp;

/// A convolution followed, where the file fuses one, by ReLU6.
#[derive(Module, Debug)]
pub struct ConvAct {
    conv: Conv2d,
    relu6: bool,
}

impl ConvAct {
    /// Build from a TFLite convolution, moving its weights to Burn's layout
    /// `[out, in / groups, kh, kw]`.
    pub fn from_op(op: &ConvOp, device: &Device) -> Self {
        let (weight, shape, groups) = burn_layout(op);
        let [out, per_group, kh, kw] = shape;
        let padding = if op.same_padding { PaddingConfig2d::Same } else { PaddingConfig2d::Valid };
        let mut conv = Conv2dConfig::new([per_group * groups, out], [kh, kw])
            .with_stride([op.stride, op.stride])
            .with_groups(groups)
            .with_padding(padding)
            .init(device);
        conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(weight, shape), device));
        conv.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(op.bias.clone(), [out]),
            device,
        )));
        ConvAct { conv, relu6: op.relu6 }
    }

    /// # Shapes
    ///   - Input  [batch, in, height, width]
    ///   - Output [batch, out, height / stride, width / stride]
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        if self.relu6 {
            y.clamp(0.0, 6.0)
        } else {
            y
        }
    }
}

/// TFLite `[out, kh, kw, in]` (or depthwise `[1, kh, kw, c]`) to Burn `[out, in/groups, kh, kw]`.
fn burn_layout(op: &ConvOp) -> (Vec<f32>, [usize; 4], usize) {
    let [a, kh, kw, b] = [op.weight_shape[0], op.weight_shape[1], op.weight_shape[2], op.weight_shape[3]];
    // Depthwise: `a` is the multiplier (1) and `b` the channels; each channel is its own group.
    let (out, inputs, groups) = if op.depthwise { (b, 1, b) } else { (a, b, 1) };
    let mut weight = vec![0.0; out * inputs * kh * kw];
    for o in 0..out {
        for i in 0..inputs {
            for y in 0..kh {
                for x in 0..kw {
                    let src = if op.depthwise {
                        (y * kw + x) * b + o
                    } else {
                        ((o * kh + y) * kw + x) * b + i
                    };
                    weight[((o * inputs + i) * kh + y) * kw + x] = op.weight[src];
                }
            }
        }
    }
    (weight, [out, inputs, kh, kw], groups)
}

/// Expand (optional) → depthwise → project, with a residual connection where the block keeps
/// its shape.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand: Option<ConvAct>,
    depthwise: ConvAct,
    project: ConvAct,
    residual: bool,
}

impl InvertedResidual {
    pub fn new(expand: Option<ConvAct>, depthwise: ConvAct, project: ConvAct, residual: bool) -> Self {
        InvertedResidual { expand, depthwise, project, residual }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        if let Some(expand) = &self.expand {
            y = expand.forward(y);
        }
        let y = self.project.forward(self.depthwise.forward(y));
        if self.residual {
            y + x
        } else {
            y
        }
    }
}
