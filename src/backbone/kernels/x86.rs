//! The kernels' inner loops in 256-bit vectors (and the 1x1 sums in 512 where they can be), for
//! x86-64 processors that have them (`Simd`). The 1x1 sums: a panel's two weight vectors are
//! one, so each pair of a pixel's inputs meets a panel's 8 outputs in one instruction; two
//! panels at a time, 8 sums in registers (4 took 1.2x as long natively: each waited on the one
//! before). Depthwise and the first convolution: 8 channels a fused multiply-add.

use std::arch::x86_64::*;

use super::{bytemuck, f32x4, i16x8, u32x4, Outputs, Stem, PANEL, ROWS};

/// `Depthwise::run`'s sums for one pixel: `dst`'s channels over `taps`, 8 channels a fused
/// multiply-add, 32 in registers across the taps.
#[target_feature(enable = "avx2,fma")]
pub(super) fn depthwise(taps: &[(&[f32x4], &[f32x4])], bias: &[f32x4], relu6: bool, dst: &mut [f32x4]) {
    let finish = |v: __m256| if relu6 { clamp6(v) } else { v };
    let v = dst.len();
    let mut c = 0;
    while c + 8 <= v {
        let mut acc: [__m256; 4] = std::array::from_fn(|j| join(&bias[c + 2 * j..]));
        for &(src, w) in taps {
            let (src, w) = (&src[c..c + 8], &w[c..c + 8]);
            for j in 0..4 {
                acc[j] = _mm256_fmadd_ps(join(&src[2 * j..]), join(&w[2 * j..]), acc[j]);
            }
        }
        for (j, acc) in acc.into_iter().enumerate() {
            write(&mut dst[c + 2 * j..], finish(acc));
        }
        c += 8;
    }
    // The channels left (MobileNetV2's 144: 4 vectors), 8 at a time; a last 4 alone.
    while c < v {
        let two = c + 2 <= v;
        let read = |a: &[f32x4]| if two { join(&a[c..]) } else { _mm256_castps128_ps256(bytemuck::cast(a[c])) };
        let mut acc = read(bias);
        for &(src, w) in taps {
            acc = _mm256_fmadd_ps(read(src), read(w), acc);
        }
        let acc = finish(acc);
        if two {
            write(&mut dst[c..], acc);
        } else {
            dst[c] = bytemuck::cast(_mm256_castps256_ps128(acc));
        }
        c += if two { 2 } else { 1 };
    }
}

/// `Stem::run` for the output pixel `(oy, ox)`: its 32 channels in four vectors of 8, fused
/// multiply-adds over the 27 taps inside the photo.
#[target_feature(enable = "avx2,fma")]
pub(super) fn stem(stem: &Stem, rgb: &[f32], side: usize, pad: usize, (oy, ox): (usize, usize), dst: &mut [f32x4]) {
    let mut acc: [__m256; 4] = std::array::from_fn(|j| join(&stem.bias[2 * j..]));
    stem.for_each_tap(rgb, side, pad, (oy, ox), |value, w| {
        let a = _mm256_set1_ps(value);
        for j in 0..4 {
            acc[j] = _mm256_fmadd_ps(a, join(&w[2 * j..]), acc[j]);
        }
    });
    for (j, acc) in acc.into_iter().enumerate() {
        let acc = if stem.relu6 { clamp6(acc) } else { acc };
        write(&mut dst[2 * j..], acc);
    }
}

/// ReLU6.
#[inline]
#[target_feature(enable = "avx")]
fn clamp6(v: __m256) -> __m256 {
    _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0))
}

/// Two vectors of 4 (the first two of `a`) as one of 8.
#[inline]
#[target_feature(enable = "avx")]
fn join(a: &[f32x4]) -> __m256 {
    _mm256_set_m128(bytemuck::cast(a[1]), bytemuck::cast(a[0]))
}

/// A vector of 8 into the first two vectors of 4 of `dst`.
#[inline]
#[target_feature(enable = "avx")]
fn write(dst: &mut [f32x4], v: __m256) {
    let dst = &mut dst[..2];
    // SAFETY: `dst` holds the 8 values `storeu` writes, at any alignment.
    unsafe { _mm256_storeu_ps(dst.as_mut_ptr().cast(), v) };
}

#[target_feature(enable = "avx2,fma")]
pub(super) fn avx2_sums(levels: &[u32x4], weights: [&[[i16x8; 2]]; 2], to: &mut Outputs, p: usize, panel: usize) {
    sums(levels, weights, |acc, x, w| _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)), to, p, panel)
}

#[target_feature(enable = "avx2,fma,avxvnni")]
pub(super) fn avx_vnni_sums(levels: &[u32x4], weights: [&[[i16x8; 2]]; 2], to: &mut Outputs, p: usize, panel: usize) {
    sums(levels, weights, |acc, x, w| _mm256_dpwssd_avx_epi32(acc, x, w), to, p, panel)
}

/// Two groups of pixels times two panels at a time in 512-bit vectors (a row's two panels
/// side by side, 8 sums in registers); fewer (a tile's or a layer's odd last) as above.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
pub(super) fn avx512_vnni_sums(levels: [&[u32x4]; 2], weights: [&[[i16x8; 2]]; 2], to: &mut Outputs, p: usize, panel: usize) {
    if levels[1].is_empty() || weights[1].is_empty() {
        for (g, levels) in levels.into_iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            sums(levels, weights, |acc, x, w| _mm256_dpwssd_epi32(acc, x, w), to, p + g * ROWS, panel);
        }
        return;
    }
    let mut acc = [[_mm512_setzero_si512(); ROWS]; 2];
    for (((x0, x1), w0), w1) in levels[0].iter().zip(levels[1]).zip(weights[0]).zip(weights[1]) {
        let w = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load(w0)), load(w1));
        let x = [x0.to_array(), x1.to_array()];
        for g in 0..2 {
            for r in 0..ROWS {
                acc[g][r] = _mm512_dpwssd_epi32(acc[g][r], _mm512_set1_epi32(x[g][r] as i32), w);
            }
        }
    }
    for (g, acc) in acc.into_iter().enumerate() {
        store(acc.map(|a| _mm512_castsi512_si256(a)), to, p + g * ROWS, panel);
        store(acc.map(|a| _mm512_extracti64x4_epi64::<1>(a)), to, p + g * ROWS, panel + 1);
    }
}

/// `madd(acc, x, w)`: `acc` plus the sums of the products of `x` and `w`'s pairs of 16 bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sums(
    levels: &[u32x4],
    weights: [&[[i16x8; 2]]; 2],
    madd: impl Fn(__m256i, __m256i, __m256i) -> __m256i,
    to: &mut Outputs,
    p: usize,
    panel: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); ROWS]; 2];
    if weights[1].is_empty() {
        for (x, w) in levels.iter().zip(weights[0]) {
            let (x, w) = (x.to_array(), load(w));
            for r in 0..ROWS {
                acc[0][r] = madd(acc[0][r], _mm256_set1_epi32(x[r] as i32), w);
            }
        }
    } else {
        for ((x, w0), w1) in levels.iter().zip(weights[0]).zip(weights[1]) {
            let (x, w) = (x.to_array(), [load(w0), load(w1)]);
            for r in 0..ROWS {
                let x = _mm256_set1_epi32(x[r] as i32);
                for p in 0..2 {
                    acc[p][r] = madd(acc[p][r], x, w[p]);
                }
            }
        }
    }
    store(acc[0], to, p, panel);
    if !weights[1].is_empty() {
        store(acc[1], to, p, panel + 1);
    }
}

/// `Outputs::store` in 256-bit vectors with FMA, where the block is whole (all `ROWS`
/// pixels and a whole panel: all but the map's last pixels and the ImageNet classifier's
/// last panel); else `Outputs::store` itself. (Through `Outputs::store` these were 18 % of
/// a photo natively, as much as the sums.)
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(acc: [__m256i; ROWS], to: &mut Outputs, p: usize, panel: usize) {
    let kernel = to.kernel;
    let first = panel * PANEL;
    if p + ROWS > to.pixels || first + PANEL > kernel.outputs {
        return to.store(bytemuck::cast(acc), p, panel);
    }
    let (scale, bias) = (join(&kernel.scale[panel]), join(&kernel.bias[panel]));
    for (r, acc) in acc.into_iter().enumerate() {
        let at = (p + r) * kernel.outputs + first;
        let x = _mm256_mul_ps(scale, _mm256_set1_ps(to.scales[p + r]));
        let mut v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), x, bias);
        if kernel.relu6 {
            v = clamp6(v);
        }
        if let Some(add) = to.residual {
            let add = &add[at..at + PANEL];
            // SAFETY: `add` holds the 8 values `loadu` reads, at any alignment.
            v = _mm256_add_ps(v, unsafe { _mm256_loadu_ps(add.as_ptr()) });
        }
        let dst = &mut to.out[at..at + PANEL];
        // SAFETY: `dst` holds the 8 values `storeu` writes, at any alignment.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
    }
}

/// A panel's two weight vectors as one (a cast to 256 bits, or an unaligned read in a
/// build with debug assertions, went through the stack: a store and a load more a pair).
#[inline]
#[target_feature(enable = "avx")]
fn load(w: &[i16x8; 2]) -> __m256i {
    _mm256_set_m128i(bytemuck::cast(w[1]), bytemuck::cast(w[0]))
}
