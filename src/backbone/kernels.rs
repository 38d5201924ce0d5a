//! The backbone on the CPU, written for MobileNetV2's four kinds of operator instead of run
//! through a general tensor library: the 3x3 first convolution, 1x1 convolutions (matrix
//! products), depthwise 3x3 convolutions and average pooling.
//!
//! Activations are NHWC (a pixel's channels side by side), so every kernel runs along
//! channels in SIMD vectors of 4 (`wide::f32x4`: simd128 in the browser, SSE2 natively),
//! explicitly, so that the browser build's size-first optimisation cannot turn it scalar.
//! Bias, ReLU6, TFLite's SAME padding (one pixel more at the bottom and right for stride 2)
//! and the residual addition happen inside the kernels: no padded copies, no extra passes.
//! Each kernel is tested against a plain loop below; the whole network against the
//! fixtures' float reference embeddings (`tests/backbone.rs`).

use wide::{bytemuck, f32x4};

use super::tflite::{ConvOp, Op};
use super::{checked_convolutions, EMBEDDING_DIM, FEATURE_SIDE, IMAGENET_CLASSES};
use crate::error::Result;
use crate::preprocess::INPUT_SIDE;

/// Channels in one SIMD vector.
const LANES: usize = 4;
/// Output channels one pass of the 1x1 kernel computes: two vectors.
const PANEL: usize = 2 * LANES;
/// Pixels one pass of the 1x1 kernel computes: with `PANEL`, 8 accumulators, which fit the
/// 16 vector registers of SSE2 (and the browser's code generators) with room to spare; 6
/// pixels (12 accumulators) measured 1.6x slower in Chromium.
const ROWS: usize = 4;
/// Pixels a 1x1 convolution takes at a time, so that their inputs stay in cache while every
/// panel of weights passes over them.
const TILE: usize = 64;

/// An activation map: `height x width` pixels of `channels` values, NHWC, in SIMD vectors.
pub struct Map {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    data: Vec<f32x4>,
}

impl Map {
    fn new(height: usize, width: usize, channels: usize) -> Self {
        Map { height, width, channels, data: vec![f32x4::ZERO; height * width * channels.div_ceil(LANES)] }
    }

    /// The values, pixel by pixel; `channels` must be a multiple of 4 for this to be exact.
    pub fn values(&self) -> &[f32] {
        bytemuck::cast_slice(&self.data)
    }

    fn pixels(&self) -> usize {
        self.height * self.width
    }
}

/// The vector of lanes `value(first)` to `value(first + 3)`: how every kernel lays out its
/// weights.
fn vector(first: usize, value: impl Fn(usize) -> f32) -> f32x4 {
    f32x4::from(std::array::from_fn::<f32, LANES, _>(|l| value(first + l)))
}

/// Values in vectors, the last one padded with zeros.
fn vectors(values: &[f32]) -> Vec<f32x4> {
    (0..values.len().div_ceil(LANES)).map(|v| vector(v * LANES, |i| values.get(i).copied().unwrap_or(0.0))).collect()
}

fn relu6(v: f32x4) -> f32x4 {
    v.max(f32x4::ZERO).min(f32x4::splat(6.0))
}

/// TFLite's SAME padding along one side: (output size, padding before the first pixel).
fn same(size: usize, stride: usize, kernel: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (out, total / 2)
}

/// A 1x1 convolution: `out[p][o] = bias[o] + Σ_i x[p][i] · w[o][i]`, then ReLU6 or the
/// residual where the file has them.
pub struct Pointwise {
    inputs: usize,
    outputs: usize,
    /// `[outputs / PANEL][inputs]` pairs of vectors: a panel's weights for one input, together.
    packed: Vec<[f32x4; 2]>,
    bias: Vec<[f32x4; 2]>,
    relu6: bool,
}

impl Pointwise {
    /// From TFLite weights `[outputs, inputs]`.
    pub fn new(weight: &[f32], bias: &[f32], inputs: usize, outputs: usize, relu6: bool) -> Self {
        assert!(inputs.is_multiple_of(LANES) && weight.len() == inputs * outputs && bias.len() == outputs);
        let panels = outputs.div_ceil(PANEL);
        let at = |o: usize, i: usize| if o < outputs { weight[o * inputs + i] } else { 0.0 };
        let mut packed = Vec::with_capacity(panels * inputs);
        for p in 0..panels {
            for i in 0..inputs {
                packed.push([vector(p * PANEL, |o| at(o, i)), vector(p * PANEL + LANES, |o| at(o, i))]);
            }
        }
        let b = |o: usize| bias.get(o).copied().unwrap_or(0.0);
        let bias = (0..panels).map(|p| [vector(p * PANEL, b), vector(p * PANEL + LANES, b)]).collect();
        Pointwise { inputs, outputs, packed, bias, relu6 }
    }

    fn from_op(op: &ConvOp) -> Self {
        Pointwise::new(&op.weight, &op.bias, op.weight_shape[3], op.weight_shape[0], op.relu6)
    }

    /// `x`: `pixels x inputs` values; returns `pixels x outputs`, plus `residual` (same shape
    /// as the output) when given. (Never inlined, here and in the other kernels: one call a
    /// layer costs nothing, and a profile then tells the kernels apart.)
    #[inline(never)]
    pub fn run(&self, x: &[f32], pixels: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        debug_assert_eq!(x.len(), pixels * self.inputs);
        debug_assert_eq!(out.len(), pixels * self.outputs);
        let panels = self.bias.len();
        for tile in (0..pixels).step_by(TILE) {
            let end = (tile + TILE).min(pixels);
            for panel in 0..panels {
                let mut p = tile;
                while p + ROWS <= end {
                    self.block::<ROWS>(x, p, panel, residual, out);
                    p += ROWS;
                }
                while p < end {
                    self.block::<1>(x, p, panel, residual, out);
                    p += 1;
                }
            }
        }
    }

    /// `R` pixels from `p` times one panel of `PANEL` outputs.
    #[inline(always)]
    fn block<const R: usize>(&self, x: &[f32], p: usize, panel: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        let k = self.inputs;
        let weights = &self.packed[panel * k..(panel + 1) * k];
        let rows: [&[f32]; R] = std::array::from_fn(|r| &x[(p + r) * k..(p + r + 1) * k]);
        let mut acc = [self.bias[panel]; R];
        for (i, &[w0, w1]) in weights.iter().enumerate() {
            for r in 0..R {
                let a = f32x4::splat(rows[r][i]);
                acc[r][0] = a.mul_add(w0, acc[r][0]);
                acc[r][1] = a.mul_add(w1, acc[r][1]);
            }
        }
        let first = panel * PANEL;
        let width = PANEL.min(self.outputs - first);
        for (r, [a0, a1]) in acc.into_iter().enumerate() {
            let (a0, a1) = if self.relu6 { (relu6(a0), relu6(a1)) } else { (a0, a1) };
            let mut values = [0.0f32; PANEL];
            values[..LANES].copy_from_slice(&a0.to_array());
            values[LANES..].copy_from_slice(&a1.to_array());
            let at = (p + r) * self.outputs + first;
            let dst = &mut out[at..at + width];
            match residual {
                Some(add) => dst.iter_mut().zip(&values).zip(&add[at..at + width]).for_each(|((d, v), a)| *d = v + a),
                None => dst.copy_from_slice(&values[..width]),
            }
        }
    }
}

/// A depthwise 3x3 convolution with SAME padding, stride 1 or 2, and ReLU6.
pub struct Depthwise {
    channels: usize,
    stride: usize,
    /// `[3][3][channels / 4]` vectors, TFLite's own order.
    weight: Vec<f32x4>,
    bias: Vec<f32x4>,
    relu6: bool,
}

impl Depthwise {
    /// From TFLite weights `[1, 3, 3, channels]`.
    pub fn new(weight: &[f32], bias: &[f32], channels: usize, stride: usize, relu6: bool) -> Self {
        assert!(channels.is_multiple_of(LANES) && weight.len() == 9 * channels && bias.len() == channels);
        Depthwise { channels, stride, weight: vectors(weight), bias: vectors(bias), relu6 }
    }

    fn from_op(op: &ConvOp) -> Self {
        Depthwise::new(&op.weight, &op.bias, op.weight_shape[3], op.stride, op.relu6)
    }

    #[inline(never)]
    pub fn run(&self, x: &Map) -> Map {
        debug_assert_eq!(x.channels, self.channels);
        let (oh, top) = same(x.height, self.stride, 3);
        let (ow, left) = same(x.width, self.stride, 3);
        let mut out = Map::new(oh, ow, self.channels);
        let v = self.channels / LANES;
        for oy in 0..oh {
            for ox in 0..ow {
                // Tap by tap over all channels, the sums in the output pixel (in cache): one
                // clean pass each. (Channel by channel with the sum in a register across the
                // taps measured slower in the browser: 18 % of the time became 27 %.)
                let dst = &mut out.data[(oy * ow + ox) * v..(oy * ow + ox + 1) * v];
                dst.copy_from_slice(&self.bias);
                for ky in 0..3 {
                    let Some(iy) = (oy * self.stride + ky).checked_sub(top).filter(|&y| y < x.height) else { continue };
                    for kx in 0..3 {
                        let Some(ix) = (ox * self.stride + kx).checked_sub(left).filter(|&x_| x_ < x.width) else { continue };
                        let src = &x.data[(iy * x.width + ix) * v..(iy * x.width + ix + 1) * v];
                        let w = &self.weight[(ky * 3 + kx) * v..(ky * 3 + kx + 1) * v];
                        for ((d, &s), &w) in dst.iter_mut().zip(src).zip(w) {
                            *d = s.mul_add(w, *d);
                        }
                    }
                }
                if self.relu6 {
                    dst.iter_mut().for_each(|d| *d = relu6(*d));
                }
            }
        }
        out
    }
}

/// Output vectors of the first convolution: its 32 channels, kept in registers.
const STEM_VECTORS: usize = 8;

/// The first convolution: 3x3, stride 2, SAME, from 3 colour channels to 32; ReLU6.
pub struct Stem {
    stride: usize,
    /// `[3][3][3 colours]` sets of the 32 channels' weights.
    weight: Vec<[f32x4; STEM_VECTORS]>,
    bias: [f32x4; STEM_VECTORS],
    relu6: bool,
}

impl Stem {
    /// From TFLite weights `[32, 3, 3, 3]`.
    pub fn new(weight: &[f32], bias: &[f32], outputs: usize, stride: usize, relu6: bool) -> Self {
        assert!(outputs == STEM_VECTORS * LANES && weight.len() == outputs * 27 && bias.len() == outputs);
        let set = |value: &dyn Fn(usize) -> f32| -> [f32x4; STEM_VECTORS] { std::array::from_fn(|v| vector(v * LANES, value)) };
        let weight = (0..27).map(|t| set(&|o| weight[o * 27 + t])).collect();
        Stem { stride, weight, bias: set(&|o| bias[o]), relu6 }
    }

    fn from_op(op: &ConvOp) -> Self {
        Stem::new(&op.weight, &op.bias, op.weight_shape[0], op.stride, op.relu6)
    }

    /// `rgb`: `side x side` pixels of 3 values (HWC).
    #[inline(never)]
    pub fn run(&self, rgb: &[f32], side: usize) -> Map {
        let (o, pad) = same(side, self.stride, 3);
        let mut out = Map::new(o, o, STEM_VECTORS * LANES);
        for oy in 0..o {
            for ox in 0..o {
                let mut acc = self.bias;
                for ky in 0..3 {
                    let Some(iy) = (oy * self.stride + ky).checked_sub(pad).filter(|&y| y < side) else { continue };
                    for kx in 0..3 {
                        let Some(ix) = (ox * self.stride + kx).checked_sub(pad).filter(|&x| x < side) else { continue };
                        let at = (iy * side + ix) * 3;
                        for (c, &value) in rgb[at..at + 3].iter().enumerate() {
                            let a = f32x4::splat(value);
                            let w = &self.weight[(ky * 3 + kx) * 3 + c];
                            for (acc, &w) in acc.iter_mut().zip(w) {
                                *acc = a.mul_add(w, *acc);
                            }
                        }
                    }
                }
                if self.relu6 {
                    acc = acc.map(relu6);
                }
                let at = (oy * o + ox) * STEM_VECTORS;
                out.data[at..at + STEM_VECTORS].copy_from_slice(&acc);
            }
        }
        out
    }
}

/// Expand 1x1 (optional) → depthwise 3x3 → project 1x1, plus the input where shapes allow.
struct Block {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    project: Pointwise,
    residual: bool,
}

impl Block {
    fn run(&self, x: &Map) -> Map {
        let expanded;
        let hidden = match &self.expand {
            Some(expand) => {
                let mut map = Map::new(x.height, x.width, expand.outputs);
                expand.run(x.values(), x.pixels(), None, bytemuck::cast_slice_mut(&mut map.data));
                expanded = map;
                &expanded
            }
            None => x,
        };
        let y = self.depthwise.run(hidden);
        let mut out = Map::new(y.height, y.width, self.project.outputs);
        let residual = self.residual.then(|| x.values());
        self.project.run(y.values(), y.pixels(), residual, bytemuck::cast_slice_mut(&mut out.data));
        out
    }
}

/// MobileNetV2 on the CPU.
pub struct Network {
    stem: Stem,
    blocks: Vec<Block>,
    features: Pointwise,
    classifier: Pointwise,
}

impl Network {
    /// From the operators of a TFLite graph, each checked against MobileNetV2 1.0.
    pub fn from_ops(ops: &[Op]) -> Result<Self> {
        let (convs, blocks) = checked_convolutions(ops)?;
        let mut convs = convs.iter();
        let mut next = || *convs.next().expect("checked against the architecture");
        let stem = Stem::from_op(next());
        let blocks = blocks
            .iter()
            .map(|&(expands, residual)| {
                let expand = expands.then(|| Pointwise::from_op(next()));
                let depthwise = Depthwise::from_op(next());
                let project = Pointwise::from_op(next());
                Block { expand, depthwise, project, residual }
            })
            .collect();
        let features = Pointwise::from_op(next());
        let classifier = Pointwise::from_op(next());
        Ok(Network { stem, blocks, features, classifier })
    }

    /// The last feature map of one photo (`[3, 224, 224]`, channel-major, as preprocessed):
    /// `7 x 7` pixels of 1280 values.
    pub fn feature_map(&self, photo: &[f32]) -> Map {
        let plane = INPUT_SIDE * INPUT_SIDE;
        let mut rgb = vec![0.0; 3 * plane];
        for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                *v = photo[c * plane + i];
            }
        }
        let mut x = self.stem.run(&rgb, INPUT_SIDE);
        for block in &self.blocks {
            x = block.run(&x);
        }
        let mut map = Map::new(x.height, x.width, self.features.outputs);
        self.features.run(x.values(), x.pixels(), None, bytemuck::cast_slice_mut(&mut map.data));
        debug_assert_eq!((map.height, map.width), (FEATURE_SIDE, FEATURE_SIDE));
        map
    }

    /// The average of a feature map's pixels: the embedding.
    pub fn pool(map: &Map) -> Vec<f32> {
        let mut sum = vec![0.0f32; map.channels];
        for pixel in map.values().chunks_exact(map.channels) {
            sum.iter_mut().zip(pixel).for_each(|(s, v)| *s += v);
        }
        let n = map.pixels() as f32;
        sum.iter_mut().for_each(|s| *s /= n);
        sum
    }

    /// The backbone's ImageNet logits `[n * 1001]` for embeddings `[n * 1280]`.
    pub fn imagenet_logits(&self, embeddings: &[f32]) -> Vec<f32> {
        let n = embeddings.len() / EMBEDDING_DIM;
        let mut out = vec![0.0; n * IMAGENET_CLASSES];
        self.classifier.run(embeddings, n, None, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "value {i}: {x} against {y}");
        }
    }

    /// A plain NHWC convolution with TFLite's SAME padding: the reference for every kernel.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        side: usize,
        inputs: usize,
        weight: impl Fn(usize, usize, usize, usize) -> f32,
        bias: &[f32],
        outputs: usize,
        k: usize,
        stride: usize,
        depthwise: bool,
        relu6: bool,
    ) -> Vec<f32> {
        let (o, pad) = same(side, stride, k);
        let mut out = vec![0.0; o * o * outputs];
        for oy in 0..o {
            for ox in 0..o {
                for c in 0..outputs {
                    let mut s = bias[c];
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) = ((oy * stride + ky) as isize - pad as isize, (ox * stride + kx) as isize - pad as isize);
                            if iy < 0 || ix < 0 || iy >= side as isize || ix >= side as isize {
                                continue;
                            }
                            let at = (iy as usize * side + ix as usize) * inputs;
                            if depthwise {
                                s += x[at + c] * weight(c, ky, kx, 0);
                            } else {
                                for i in 0..inputs {
                                    s += x[at + i] * weight(c, ky, kx, i);
                                }
                            }
                        }
                    }
                    out[(oy * o + ox) * outputs + c] = if relu6 { s.clamp(0.0, 6.0) } else { s };
                }
            }
        }
        out
    }

    #[test]
    fn pointwise_matches_a_plain_loop_with_relu6_residual_and_ragged_sizes() {
        let mut rng = Rng::new(3);
        // 13 pixels: full blocks of 4 and a remainder; 20 outputs: a partial last panel.
        for (pixels, inputs, outputs, relu6, residual) in
            [(13, 8, 20, true, false), (64 + 5, 12, 16, false, true), (1, 4, 1001, false, false)]
        {
            let (x, w, b) = (random(pixels * inputs, &mut rng), random(outputs * inputs, &mut rng), random(outputs, &mut rng));
            let add = random(pixels * outputs, &mut rng);
            // A 1-pixel "image" per row: run the reference pixel by pixel.
            let mut want: Vec<f32> = (0..pixels)
                .flat_map(|p| {
                    reference(&x[p * inputs..(p + 1) * inputs], 1, inputs, |o, _, _, i| w[o * inputs + i], &b, outputs, 1, 1, false, relu6)
                })
                .collect();
            if residual {
                want.iter_mut().zip(&add).for_each(|(v, a)| *v += a);
            }
            let mut got = vec![0.0; pixels * outputs];
            Pointwise::new(&w, &b, inputs, outputs, relu6).run(&x, pixels, residual.then_some(&add[..]), &mut got);
            close(&got, &want);
        }
    }

    #[test]
    fn depthwise_matches_a_plain_loop_at_both_strides_and_odd_sides() {
        let mut rng = Rng::new(4);
        for (side, channels, stride) in [(7, 8, 1), (8, 12, 2), (7, 4, 2)] {
            let (x, w, b) = (random(side * side * channels, &mut rng), random(9 * channels, &mut rng), random(channels, &mut rng));
            let want = reference(&x, side, channels, |c, ky, kx, _| w[(ky * 3 + kx) * channels + c], &b, channels, 3, stride, true, true);
            let mut map = Map::new(side, side, channels);
            map.data = vectors(&x);
            let got = Depthwise::new(&w, &b, channels, stride, true).run(&map);
            close(got.values(), &want);
        }
    }

    #[test]
    fn the_first_convolution_matches_a_plain_loop() {
        let mut rng = Rng::new(5);
        let (side, outputs) = (10, 32);
        let (x, w, b) = (random(side * side * 3, &mut rng), random(outputs * 27, &mut rng), random(outputs, &mut rng));
        let want = reference(&x, side, 3, |o, ky, kx, i| w[((o * 3 + ky) * 3 + kx) * 3 + i], &b, outputs, 3, 2, false, true);
        let got = Stem::new(&w, &b, outputs, 2, true).run(&x, side);
        close(got.values(), &want);
    }

    #[test]
    fn same_padding_is_tflites() {
        assert_eq!(same(224, 2, 3), (112, 0)); // one pixel more at the bottom/right
        assert_eq!(same(112, 1, 3), (112, 1));
        assert_eq!(same(7, 2, 3), (4, 1));
    }
}
