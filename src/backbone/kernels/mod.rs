//! The backbone on the CPU, written for MobileNetV2's four kinds of operator instead of run
//! through a general tensor library: the 3x3 first convolution, 1x1 convolutions (matrix
//! products), depthwise 3x3 convolutions and average pooling.
//!
//! Activations are NHWC (a pixel's channels side by side), so every kernel runs along
//! channels in SIMD vectors of 4 (`wide::f32x4`: simd128 in the browser, SSE2 natively),
//! explicitly, so that the browser build's size-first optimisation cannot turn it scalar.
//! Natively on x86-64 the inner loops take other instructions where the processor has them
//! (`Simd`, found at run time): with AVX2 and FMA 8 channels at a time, with AVX-VNNI the 1x1
//! sums' products added in the same instruction, with AVX-512 VNNI those sums in 512 bits.
//! Bias, ReLU6, TFLite's SAME padding (one pixel more at the bottom and right for stride 2)
//! and the residual addition happen inside the kernels: no padded copies, no extra passes.
//!
//! This file: the shared types, the choice of instructions and the portable kernels (the
//! browser's, and any processor's); `x86.rs`: the x86-64 inner loops; `network.rs`:
//! MobileNetV2 built from these kernels. Each kernel, on every kind of instructions this
//! machine has, is tested against a plain loop below; the whole network against the
//! fixtures' float reference embeddings (`tests/backbone.rs`).

use wide::{bytemuck, f32x4, i16x8, i32x4, u32x4};

use super::tflite::ConvOp;

mod network;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use network::Network;

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

/// Where tap `k` of a 3x3 kernel at output position `o` falls along one side of the input
/// (`size` long, `pad` before its first pixel): its input position, or none in the padding.
#[inline(always)]
fn tap(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < size)
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
    /// as the output) when given; on the instructions `simd` (the network's; the tests run
    /// every kind this machine has). (Never inlined, here and in the other kernels: one call a
    /// layer costs nothing, and a profile then tells the kernels apart.)
    #[inline(never)]
    fn run(&self, simd: Simd, x: &[f32], pixels: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        assert_eq!(x.len(), pixels * self.inputs);
        assert_eq!(out.len(), pixels * self.outputs);
        let (levels, scales) = self.quantize(x, pixels);
        let mut to = Outputs { kernel: self, scales: &scales, pixels, residual, out };
        let pairs = self.inputs / 2;
        let groups = pixels.div_ceil(ROWS);
        for tile in (0..groups).step_by(TILE / ROWS) {
            // Two panels at a time (the last alone where their number is odd): one load of a
            // pixel pair's levels serves both.
            for first in (0..self.bias.len()).step_by(2) {
                let panel = |p: usize| self.packed.get(p * pairs..(p + 1) * pairs).unwrap_or(&[]);
                let weights = [panel(first), panel(first + 1)];
                // Two groups of pixels at a time (one where the tile ends).
                let end = (tile + TILE / ROWS).min(groups);
                for group in (tile..end).step_by(2) {
                    let levels = |g: usize| if g < end { &levels[g * pairs..(g + 1) * pairs] } else { &[] };
                    simd.sums([levels(group), levels(group + 1)], weights, &mut to, group * ROWS, first);
                }
            }
        }
    }
}

/// Where a 1x1 kernel's sums go: each pixel's scale back from levels, and the outputs.
struct Outputs<'a> {
    kernel: &'a Pointwise,
    /// Per pixel.
    scales: &'a [f32],
    pixels: usize,
    residual: Option<&'a [f32]>,
    out: &'a mut [f32],
}

impl Outputs<'_> {
    /// A block's sums (`ROWS` pixels from `p` times one panel of `PANEL` outputs) as outputs:
    /// scaled back, bias, ReLU6 and the residual; those before `pixels` only.
    #[inline(always)]
    fn store(&mut self, acc: BlockSums, p: usize, panel: usize) {
        let Outputs { kernel, scales, pixels, residual, ref mut out } = *self;
        let first = panel * PANEL;
        let width = PANEL.min(kernel.outputs - first);
        let [s0, s1] = kernel.scale[panel];
        let [b0, b1] = kernel.bias[panel];
        for (r, [a0, a1]) in acc.into_iter().enumerate().take(pixels.saturating_sub(p)) {
            let x = f32x4::splat(scales[p + r]);
            let a0 = f32x4::from_i32x4(a0).mul_add(s0 * x, b0);
            let a1 = f32x4::from_i32x4(a1).mul_add(s1 * x, b1);
            let (a0, a1) = if kernel.relu6 { (relu6(a0), relu6(a1)) } else { (a0, a1) };
            let at = (p + r) * kernel.outputs + first;
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

/// One block of a 1x1 convolution's integer sums: `ROWS` pixels, each two vectors of the
/// panel's outputs.
type BlockSums = [[i32x4; 2]; ROWS];

/// The SIMD instructions the kernels' inner loops use, by what this processor has. Everywhere
/// `Portable` (`wide`'s vectors of 128 bits: simd128 in the browser, SSE2 natively); on x86-64
/// processors with AVX2 and FMA, vectors of 256 bits (module `x86`), with AVX-VNNI the 1x1
/// sums' products added in the same instruction, with AVX-512 VNNI those sums in 512 bits.
/// Found at run time: one binary runs on any x86-64.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    AvxVnni,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Simd {
    /// The kinds this processor can run, best last.
    fn available() -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut kinds = vec![Simd::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                kinds.push(Simd::Avx2);
                if is_x86_feature_detected!("avxvnni") {
                    kinds.push(Simd::AvxVnni);
                }
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") && is_x86_feature_detected!("avx512vnni") {
                    kinds.push(Simd::Avx512Vnni);
                }
            }
        }
        kinds
    }

    fn best() -> Simd {
        static BEST: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Simd::available().pop().unwrap_or(Simd::Portable))
    }

    /// `levels` (two groups of `ROWS` pixels from `p`, each `[inputs / 2]` pairs, or one where
    /// the second is empty) times the weights of panels `panel` and `panel + 1` (or of the first
    /// alone, likewise), into `to` (stored where they are made: handing the sums back as a value
    /// had copied them through memory, 9 % of a photo natively).
    #[inline(always)]
    fn sums(self, levels: [&[u32x4]; 2], weights: [&[[i16x8; 2]]; 2], to: &mut Outputs, p: usize, panel: usize) {
        let groups = levels.into_iter().enumerate().filter(|(_, l)| !l.is_empty());
        match self {
            Simd::Portable => {
                for (g, levels) in groups {
                    for (j, weights) in weights.into_iter().enumerate().filter(|(_, w)| !w.is_empty()) {
                        to.store(portable_sums(levels, weights), p + g * ROWS, panel + j);
                    }
                }
            }
            // SAFETY (all three): `available` found these instructions on this processor.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => groups.for_each(|(g, levels)| unsafe { x86::avx2_sums(levels, weights, to, p + g * ROWS, panel) }),
            #[cfg(target_arch = "x86_64")]
            Simd::AvxVnni => groups.for_each(|(g, levels)| unsafe { x86::avx_vnni_sums(levels, weights, to, p + g * ROWS, panel) }),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni => unsafe { x86::avx512_vnni_sums(levels, weights, to, p, panel) },
        }
    }
}

/// A set of instructions the CPU kernels can run on, one this processor has: only
/// `Instructions::available` makes them, so that no kernel runs on instructions the
/// processor lacks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Instructions(Simd);

impl Instructions {
    /// Every set this processor has, best last (the one the kernels take by default).
    pub fn available() -> Vec<Instructions> {
        Simd::available().into_iter().map(Instructions).collect()
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            Simd::Portable if cfg!(target_arch = "wasm32") => "simd128",
            Simd::Portable if cfg!(target_arch = "x86_64") => "SSE2",
            Simd::Portable => "128-bit SIMD",
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => "AVX2",
            #[cfg(target_arch = "x86_64")]
            Simd::AvxVnni => "AVX-VNNI",
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni => "AVX-512 VNNI",
        }
    }
}

fn portable_sums(levels: &[u32x4], weights: &[[i16x8; 2]]) -> BlockSums {
    let mut acc = [[i32x4::ZERO; 2]; ROWS];
    for (x, &[w0, w1]) in levels.iter().zip(weights) {
        let x = x.to_array();
        for r in 0..ROWS {
            let a: i16x8 = bytemuck::cast(u32x4::splat(x[r]));
            acc[r][0] += a.dot(w0);
            acc[r][1] += a.dot(w1);
        }
    }
    acc
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
    fn run(&self, simd: Simd, x: &Map) -> Map {
        assert_eq!(x.channels, self.channels);
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
                    let Some(iy) = tap(oy, ky, self.stride, top, x.height) else { continue };
                    for kx in 0..3 {
                        let Some(ix) = tap(ox, kx, self.stride, left, x.width) else { continue };
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
                #[cfg(target_arch = "x86_64")]
                if simd != Simd::Portable {
                    // SAFETY: `Simd::available` found AVX2 and FMA on this processor.
                    unsafe { x86::depthwise(taps, &self.bias, self.relu6, dst) };
                    continue;
                }
                let _ = simd;
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

    /// `each(value, weights)` for each input value the output pixel `(oy, ox)` sees (those inside
    /// the photo: 27 but at the edges), with its weights for the 32 channels. (Inlined into each
    /// instruction set's loop.)
    #[inline(always)]
    fn for_each_tap(&self, rgb: &[f32], side: usize, pad: usize, (oy, ox): (usize, usize), mut each: impl FnMut(f32, &[f32x4; STEM_VECTORS])) {
        for ky in 0..3 {
            let Some(iy) = tap(oy, ky, self.stride, pad, side) else { continue };
            for kx in 0..3 {
                let Some(ix) = tap(ox, kx, self.stride, pad, side) else { continue };
                let at = (iy * side + ix) * 3;
                for (c, &value) in rgb[at..at + 3].iter().enumerate() {
                    each(value, &self.weight[(ky * 3 + kx) * 3 + c]);
                }
            }
        }
    }

    /// `rgb`: `side x side` pixels of 3 values (HWC).
    #[inline(never)]
    fn run(&self, simd: Simd, rgb: &[f32], side: usize) -> Map {
        let (o, pad) = same(side, self.stride, 3);
        let mut out = Map::new(o, o, STEM_VECTORS * LANES);
        for oy in 0..o {
            for ox in 0..o {
                let at = (oy * o + ox) * STEM_VECTORS;
                let dst = &mut out.data[at..at + STEM_VECTORS];
                #[cfg(target_arch = "x86_64")]
                if simd != Simd::Portable {
                    // SAFETY: `Simd::available` found AVX2 and FMA on this processor.
                    unsafe { x86::stem(self, rgb, side, pad, (oy, ox), dst) };
                    continue;
                }
                let _ = simd;
                let mut acc = self.bias;
                self.for_each_tap(rgb, side, pad, (oy, ox), |value, w| {
                    let a = f32x4::splat(value);
                    for (acc, &w) in acc.iter_mut().zip(w) {
                        *acc = a.mul_add(w, *acc);
                    }
                });
                if self.relu6 {
                    acc = acc.map(relu6);
                }
                dst.copy_from_slice(&acc);
            }
        }
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
        for simd in Simd::available() {
            let mut got = vec![0.0; pixels * outputs];
            kernel.run(simd, x, pixels, add, &mut got);
            check_outputs(&kernel, &got, x, w, file_scale, b, shape, relu6, add);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_outputs(kernel: &Pointwise, got: &[f32], x: &[f32], w: &[f32], file_scale: &[f32], b: &[f32], shape: (usize, usize, usize), relu6: bool, add: Option<&[f32]>) {
        let (pixels, inputs, outputs) = shape;
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
        for (side, channels, stride) in [(7, 8, 1), (8, 12, 2), (7, 4, 2), (5, 148, 1), (6, 144, 2)] {
            let (x, w, b) = (random(side * side * channels, &mut rng), random(9 * channels, &mut rng), random(channels, &mut rng));
            let want = reference(&x, side, channels, |c, ky, kx, _| w[(ky * 3 + kx) * channels + c], &b, channels, 3, stride, true, true);
            let mut map = Map::new(side, side, channels);
            map.data = vectors(&x);
            for simd in Simd::available() {
                let got = Depthwise::new(&w, &b, channels, stride, true).run(simd, &map);
                close(got.values(), &want);
            }
        }
    }

    #[test]
    fn the_first_convolution_matches_a_plain_loop() {
        let mut rng = Rng::new(5);
        let (side, outputs) = (10, 32);
        let (x, w, b) = (random(side * side * 3, &mut rng), random(outputs * 27, &mut rng), random(outputs, &mut rng));
        let want = reference(&x, side, 3, |o, ky, kx, i| w[((o * 3 + ky) * 3 + kx) * 3 + i], &b, outputs, 3, 2, false, true);
        for simd in Simd::available() {
            let got = Stem::new(&w, &b, outputs, 2, true).run(simd, &x, side);
            close(got.values(), &want);
        }
    }

    #[test]
    fn same_padding_is_tflites() {
        assert_eq!(same(224, 2, 3), (112, 0)); // one pixel more at the bottom/right
        assert_eq!(same(112, 1, 3), (112, 1));
        assert_eq!(same(7, 2, 3), (4, 1));
    }
}
