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

use wide::{bytemuck, f32x4, i16x8, i32x4, u32x4};

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
// The 1x1 kernel narrows its inputs two pixels at a time, four to a group.
const _: () = assert!(ROWS == 4);
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

/// A row of values as vectors, read unaligned (a caller's plain `&[f32]`, embeddings, need not
/// be aligned): one vector load each, no bounds check per value.
fn read_vectors(row: &[f32]) -> impl Iterator<Item = f32x4> + '_ {
    row.chunks_exact(LANES).map(|c| f32x4::from(<[f32; LANES]>::try_from(c).unwrap_or_default()))
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

/// Largest weight level of a 1x1 convolution: its weights as integers in `-255..=255`. The
/// published file's uint8 weights minus their zero point are exactly such integers (taken as
/// they are: no error); float weights are rounded to them per output channel, as TFLite's own
/// int8 quantization does.
const WEIGHT_LEVELS: f32 = 255.0;

/// A 1x1 convolution: `out[p][o] = bias[o] + Σ_i x[p][i] · w[o][i]`, then ReLU6 or the
/// residual where the file has them; computed in integers.
///
/// Each pixel's inputs become 16-bit integers on their own scale (largest value at the most
/// levels the sums allow without overflowing 32 bits: `levels`), the weights are the file's
/// integers; products of pairs of inputs are summed by one instruction eight at a time
/// (`i16x8::dot`: `i32x4.dot_i16x8_s` in the browser, `pmaddwd` natively), twice the
/// multiply-adds per instruction of f32 SIMD. The sums turn back into f32 with the two scales,
/// then bias, ReLU6 and the residual.
pub struct Pointwise {
    inputs: usize,
    outputs: usize,
    /// `[outputs / PANEL][inputs / 2]` pairs of vectors: a panel's weights for two inputs,
    /// together, each output's two weights side by side (as `dot` pairs them).
    packed: Vec<[i16x8; 2]>,
    /// Each output's weight scale: its integer weights times this are the weights.
    scale: Vec<[f32x4; 2]>,
    bias: Vec<[f32x4; 2]>,
    relu6: bool,
    /// Levels of a pixel's largest input: `(2^31 - 1) / max_o Σ_i |w[o][i]|`, at most 32767.
    levels: f32,
}

impl Pointwise {
    /// From TFLite weights `[outputs, inputs]` and their scale in the file (one, one per
    /// output, or none for float weights).
    pub fn new(weight: &[f32], file_scale: &[f32], bias: &[f32], inputs: usize, outputs: usize, relu6: bool) -> Self {
        assert!(inputs.is_multiple_of(LANES) && weight.len() == inputs * outputs && bias.len() == outputs);
        let row = |o: usize| &weight[o * inputs..(o + 1) * inputs];
        // The file's scale where its weights lie within the levels on it, else the row's own.
        let scales: Vec<f32> = (0..outputs)
            .map(|o| {
                let largest = row(o).iter().fold(0.0f32, |m, w| m.max(w.abs()));
                let file = file_scale.get(o).or(file_scale.first()).copied().filter(|s| s.is_finite() && *s > 0.0);
                match file {
                    Some(s) if largest / s <= WEIGHT_LEVELS + 0.5 => s,
                    _ if largest > 0.0 && largest.is_finite() => largest / WEIGHT_LEVELS,
                    _ => 1.0,
                }
            })
            .collect();
        // The integer weights, once: the sums' bound and the packing both read them.
        let integers: Vec<i16> = weight
            .iter()
            .enumerate()
            .map(|(j, w)| (w / scales[j / inputs]).round().clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i16)
            .collect();
        let level = |o: usize, i: usize| if o < outputs { integers[o * inputs + i] } else { 0 };
        let largest_sum =
            integers.chunks_exact(inputs.max(1)).map(|row| row.iter().map(|&q| i64::from(q).abs()).sum::<i64>()).max().unwrap_or(0);
        let levels = (i64::from(i32::MAX) / largest_sum.max(1)).min(i64::from(i16::MAX)) as f32;
        let panels = outputs.div_ceil(PANEL);
        let mut packed = Vec::with_capacity(panels * inputs / 2);
        for p in 0..panels {
            for i in (0..inputs).step_by(2) {
                let pair = |first: usize| i16x8::from(std::array::from_fn::<i16, 8, _>(|l| level(first + l / 2, i + l % 2)));
                packed.push([pair(p * PANEL), pair(p * PANEL + LANES)]);
            }
        }
        let per = |values: &dyn Fn(usize) -> f32| -> Vec<[f32x4; 2]> {
            (0..panels).map(|p| [vector(p * PANEL, values), vector(p * PANEL + LANES, values)]).collect()
        };
        let scale = per(&|o| scales.get(o).copied().unwrap_or(0.0));
        let bias = per(&|o| bias.get(o).copied().unwrap_or(0.0));
        Pointwise { inputs, outputs, packed, scale, bias, relu6, levels }
    }

    fn from_op(op: &ConvOp) -> Self {
        Pointwise::new(&op.weight, &op.weight_scale, &op.bias, op.weight_shape[3], op.weight_shape[0], op.relu6)
    }

    /// Each pixel's inputs as integers, two to a `u32` (as `dot` pairs them), `ROWS` pixels
    /// interleaved (`[pixels / ROWS][inputs / 2][ROWS]`, the last group padded with zeros: one
    /// vector load gives the kernel a pair of every pixel), and the scale that turns each
    /// pixel's back.
    #[inline(never)]
    fn quantize(&self, x: &[f32], pixels: usize) -> (Vec<u32x4>, Vec<f32>) {
        let k = self.inputs;
        let groups = pixels.div_ceil(ROWS);
        let mut levels = Vec::with_capacity(groups * k / 2);
        let mut scales = vec![0.0f32; groups * ROWS];
        for group in 0..groups {
            // The pixels of the group (the last one again where the map ends, at no levels).
            let rows: [&[f32]; ROWS] = std::array::from_fn(|r| {
                let p = (group * ROWS + r).min(pixels - 1);
                &x[p * k..(p + 1) * k]
            });
            let to_levels: [f32x4; ROWS] = std::array::from_fn(|r| {
                let largest = read_vectors(rows[r]).fold(f32x4::ZERO, |m, v| m.fast_max(v.abs()));
                let largest = largest.to_array().into_iter().fold(0.0, f32::max);
                if group * ROWS + r >= pixels || !(largest > 0.0 && largest.is_finite()) {
                    return f32x4::ZERO; // past the end, all zero or not numbers: the sums are the bias
                }
                scales[group * ROWS + r] = largest / self.levels;
                f32x4::splat(self.levels / largest)
            });
            let columns = read_vectors(rows[0]).zip(read_vectors(rows[1])).zip(read_vectors(rows[2])).zip(read_vectors(rows[3]));
            for (((v0, v1), v2), v3) in columns {
                let q: [i32x4; ROWS] = std::array::from_fn(|r| ([v0, v1, v2, v3][r] * to_levels[r]).round_int());
                // Two pixels' four levels each, as 16 bits: pairs (2j, 2j+1) of both pixels.
                let narrow = |a: i32x4, b: i32x4| -> [u32; 4] {
                    bytemuck::cast::<_, u32x4>(i16x8::from_i32x8_saturate(bytemuck::cast([a, b]))).to_array()
                };
                let (a, b) = (narrow(q[0], q[1]), narrow(q[2], q[3]));
                levels.push(u32x4::from([a[0], a[2], b[0], b[2]]));
                levels.push(u32x4::from([a[1], a[3], b[1], b[3]]));
            }
        }
        (levels, scales)
    }

    /// `x`: `pixels x inputs` values; returns `pixels x outputs`, plus `residual` (same shape
    /// as the output) when given. (Never inlined, here and in the other kernels: one call a
    /// layer costs nothing, and a profile then tells the kernels apart.)
    #[inline(never)]
    pub fn run(&self, x: &[f32], pixels: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        debug_assert_eq!(x.len(), pixels * self.inputs);
        debug_assert_eq!(out.len(), pixels * self.outputs);
        let (levels, scales) = self.quantize(x, pixels);
        let pairs = self.inputs / 2;
        let groups = pixels.div_ceil(ROWS);
        for tile in (0..groups).step_by(TILE / ROWS) {
            for panel in 0..self.bias.len() {
                for group in tile..(tile + TILE / ROWS).min(groups) {
                    self.block(&levels[group * pairs..(group + 1) * pairs], &scales, group * ROWS, pixels, panel, residual, out);
                }
            }
        }
    }

    /// `ROWS` pixels from `p` (those before `pixels`) times one panel of `PANEL` outputs.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        levels: &[u32x4],
        scales: &[f32],
        p: usize,
        pixels: usize,
        panel: usize,
        residual: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let k = self.inputs / 2;
        let weights = &self.packed[panel * k..(panel + 1) * k];
        let mut acc = [[i32x4::ZERO; 2]; ROWS];
        for (x, &[w0, w1]) in levels.iter().zip(weights) {
            let x = x.to_array();
            for r in 0..ROWS {
                let a: i16x8 = bytemuck::cast(u32x4::splat(x[r]));
                acc[r][0] += a.dot(w0);
                acc[r][1] += a.dot(w1);
            }
        }
        let first = panel * PANEL;
        let width = PANEL.min(self.outputs - first);
        let [s0, s1] = self.scale[panel];
        let [b0, b1] = self.bias[panel];
        for (r, [a0, a1]) in acc.into_iter().enumerate().take(pixels.saturating_sub(p)) {
            let x = f32x4::splat(scales[p + r]);
            let a0 = f32x4::from_i32x4(a0).mul_add(s0 * x, b0);
            let a1 = f32x4::from_i32x4(a1).mul_add(s1 * x, b1);
            let (a0, a1) = if self.relu6 { (relu6(a0), relu6(a1)) } else { (a0, a1) };
            let at = (p + r) * self.outputs + first;
            if width == PANEL {
                // Whole panels (every layer but the ImageNet classifier): vector by vector.
                let store = |dst: &mut [f32], v: f32x4, add: Option<&[f32]>| {
                    let v = match add {
                        Some(add) => v + f32x4::from([add[0], add[1], add[2], add[3]]),
                        None => v,
                    };
                    dst[..LANES].copy_from_slice(&v.to_array());
                };
                let dst = &mut out[at..at + PANEL];
                store(&mut dst[..LANES], a0, residual.map(|a| &a[at..at + LANES]));
                store(&mut dst[LANES..], a1, residual.map(|a| &a[at + LANES..at + PANEL]));
                continue;
            }
            let mut values = [0.0f32; PANEL];
            values[..LANES].copy_from_slice(&a0.to_array());
            values[LANES..].copy_from_slice(&a1.to_array());
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
                // The taps inside the map (all 9 but at the edges), found once a pixel: each
                // an input pixel's vectors and the tap's weights.
                let mut taps: [(&[f32x4], &[f32x4]); 9] = [(&[], &[]); 9];
                let mut n = 0;
                for ky in 0..3 {
                    let Some(iy) = (oy * self.stride + ky).checked_sub(top).filter(|&y| y < x.height) else { continue };
                    for kx in 0..3 {
                        let Some(ix) = (ox * self.stride + kx).checked_sub(left).filter(|&x_| x_ < x.width) else { continue };
                        let at = (iy * x.width + ix) * v;
                        taps[n] = (&x.data[at..at + v], &self.weight[(ky * 3 + kx) * v..(ky * 3 + kx + 1) * v]);
                        n += 1;
                    }
                }
                let taps = &taps[..n];
                // Channels `CHUNK` vectors at a time, their sums in registers across the taps
                // (one tap over all channels at a time, the sums in memory, took 1.5x the
                // instructions: a load and a store more per multiply-add).
                let dst = &mut out.data[(oy * ow + ox) * v..(oy * ow + ox + 1) * v];
                let mut c = 0;
                while c + CHUNK <= v {
                    self.chunk::<CHUNK>(taps, c, &mut dst[c..c + CHUNK]);
                    c += CHUNK;
                }
                while c < v {
                    self.chunk::<1>(taps, c, &mut dst[c..c + 1]);
                    c += 1;
                }
            }
        }
        out
    }

    /// `N` vectors of channels from the `c`-th, summed over `taps`.
    #[inline(always)]
    fn chunk<const N: usize>(&self, taps: &[(&[f32x4], &[f32x4])], c: usize, dst: &mut [f32x4]) {
        let mut acc: [f32x4; N] = std::array::from_fn(|j| self.bias[c + j]);
        for &(src, w) in taps {
            let (src, w) = (&src[c..c + N], &w[c..c + N]);
            for j in 0..N {
                acc[j] = src[j].mul_add(w[j], acc[j]);
            }
        }
        for (d, a) in dst.iter_mut().zip(acc) {
            *d = if self.relu6 { relu6(a) } else { a };
        }
    }
}

/// Channel vectors the depthwise kernel sums at a time, in registers.
const CHUNK: usize = 4;

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

    /// Runs the 1x1 kernel and a plain f32 loop on the same inputs; every output must be within
    /// what rounding the inputs to their levels (and float weights to theirs) can explain.
    fn check_pointwise(x: &[f32], w: &[f32], file_scale: &[f32], b: &[f32], shape: (usize, usize, usize), relu6: bool, add: Option<&[f32]>) {
        let (pixels, inputs, outputs) = shape;
        let kernel = Pointwise::new(w, file_scale, b, inputs, outputs, relu6);
        let mut got = vec![0.0; pixels * outputs];
        kernel.run(x, pixels, add, &mut got);
        for p in 0..pixels {
            let row = &x[p * inputs..(p + 1) * inputs];
            let step = row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / kernel.levels;
            let want = reference(row, 1, inputs, |o, _, _, i| w[o * inputs + i], b, outputs, 1, 1, false, relu6);
            for (o, want) in want.iter().enumerate() {
                let weights = &w[o * inputs..(o + 1) * inputs];
                let weight_step = if file_scale.is_empty() { weights.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 255.0 } else { 0.0 };
                let bound: f32 = weights.iter().zip(row).map(|(w, x)| (w.abs() * step + x.abs() * weight_step) / 2.0).sum::<f32>()
                    + 1e-5 * (1.0 + want.abs());
                let want = want + add.map_or(0.0, |a| a[p * outputs + o]);
                let got = got[p * outputs + o];
                assert!((got - want).abs() <= bound, "pixel {p} output {o}: {got} against {want} (bound {bound})");
            }
        }
    }

    #[test]
    fn pointwise_matches_a_plain_loop_with_relu6_residual_and_ragged_sizes() {
        let mut rng = Rng::new(3);
        // 13 pixels: full blocks of 4 and a remainder; 20 outputs: a partial last panel.
        for (pixels, inputs, outputs, relu6, residual) in
            [(13, 8, 20, true, false), (64 + 5, 12, 16, false, true), (1, 4, 1001, false, false)]
        {
            let (x, b, add) = (random(pixels * inputs, &mut rng), random(outputs, &mut rng), random(pixels * outputs, &mut rng));
            // Weights as a quantized file holds them (integers times a scale), then as floats.
            let on_grid: Vec<f32> = (0..outputs * inputs).map(|_| ((rng.next_f32() * 511.0).floor() - 255.0) * 0.01).collect();
            let add = residual.then_some(&add[..]);
            check_pointwise(&x, &on_grid, &[0.01], &b, (pixels, inputs, outputs), relu6, add);
            check_pointwise(&x, &random(outputs * inputs, &mut rng), &[], &b, (pixels, inputs, outputs), relu6, add);
        }
    }

    #[test]
    fn pointwise_sums_do_not_overflow_at_the_largest_weights_and_inputs() {
        // 960 inputs (MobileNetV2's widest) all at the largest level, every weight too: the
        // sums reach i32::MAX's neighbourhood and must still be exact.
        let (inputs, outputs) = (960, 8);
        let w: Vec<f32> = (0..inputs * outputs).map(|i| if i % 3 == 0 { -2.55 } else { 2.55 }).collect();
        let x = vec![1.5; inputs];
        for x in [x.clone(), x.iter().map(|v| -v).collect()] {
            check_pointwise(&x, &w, &[0.01], &vec![0.0; outputs], (1, inputs, outputs), false, None);
        }
        let w = vec![2.55; inputs * outputs];
        check_pointwise(&[1.5; 960], &w, &[0.01], &vec![0.0; outputs], (1, inputs, outputs), false, None);
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
