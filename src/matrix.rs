//! Matrix products on flat, row-major `f32` slices, for the head: training and prediction are a
//! few products of an `[n, 1280]` embedding matrix with small weight matrices.
//!
//! They go through the `gemm` crate (already compiled for Burn's CPU backend): it packs and
//! tiles for the cache and has SIMD kernels on x86-64 (AVX2/FMA, chosen at run time) and on
//! wasm32 (simd128), so the head trains at the machine's speed without Burn's per-operation
//! and autodiff overhead.

use gemm::Parallelism;

/// Whether a matrix argument is stored as itself or as its transpose (both row-major).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    AsIs,
    Transposed,
}

/// `out[m, n] = a[m, k] · b[k, n]`, or `out += …` when `accumulate`.
///
/// `a` holds `m * k` values, row-major, as `[m, k]` or (Transposed) as `[k, m]`; `b` likewise as
/// `[k, n]` or `[n, k]`. Panics when a slice's length does not match: the callers are this crate.
#[allow(clippy::too_many_arguments)]
pub fn matmul(out: &mut [f32], accumulate: bool, a: &[f32], a_stored: Stored, b: &[f32], b_stored: Stored, m: usize, k: usize, n: usize) {
    assert_eq!(out.len(), m * n, "matmul: output is not {m}x{n}");
    assert_eq!(a.len(), m * k, "matmul: left side is not {m}x{k}");
    assert_eq!(b.len(), k * n, "matmul: right side is not {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let (a_cs, a_rs) = match a_stored {
        Stored::AsIs => (1, k as isize),
        Stored::Transposed => (m as isize, 1),
    };
    let (b_cs, b_rs) = match b_stored {
        Stored::AsIs => (1, n as isize),
        Stored::Transposed => (k as isize, 1),
    };
    // SAFETY: the lengths were checked above against the strides: every index gemm reads is
    // i * rs + j * cs with i < rows and j < cols, which is below the slice's length.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Add `bias[n]` to every row of `rows[m, n]`.
pub fn add_row(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(r, b)| *r += b);
    }
}

/// Column sums of `rows[m, n]`, added into `sums[n]`.
pub fn add_column_sums(sums: &mut [f32], rows: &[f32]) {
    for row in rows.chunks_exact(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, r)| *s += r);
    }
}

/// Softmax of each row of `rows[m, n]`, in place.
pub fn softmax_rows(rows: &mut [f32], n: usize) {
    for row in rows.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Index of the largest value of each row of `rows[m, n]` (ties: the first).
pub fn argmax_rows(rows: &[f32], n: usize) -> Vec<usize> {
    rows.chunks_exact(n)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best }))
        .collect()
}

/// Dot product in f64 (the optimiser's vectors are long and need the precision).
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The textbook triple loop.
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; x.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = x[r * cols + c];
            }
        }
        t
    }

    #[test]
    fn matmul_matches_the_triple_loop_in_every_layout() {
        let mut rng = Rng::new(1);
        for (m, k, n) in [(1, 1, 1), (3, 5, 2), (17, 33, 10), (64, 1280, 3)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.next_f32() - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.next_f32() - 0.5).collect();
            let want = reference(&a, &b, m, k, n);
            for (a_stored, b_stored) in [(Stored::AsIs, Stored::AsIs), (Stored::Transposed, Stored::AsIs), (Stored::AsIs, Stored::Transposed), (Stored::Transposed, Stored::Transposed)] {
                let a_in = if a_stored == Stored::AsIs { a.clone() } else { transpose(&a, m, k) };
                let b_in = if b_stored == Stored::AsIs { b.clone() } else { transpose(&b, k, n) };
                let mut out = vec![1.0; m * n];
                matmul(&mut out, true, &a_in, a_stored, &b_in, b_stored, m, k, n);
                for (o, w) in out.iter().zip(&want) {
                    assert!((o - (w + 1.0)).abs() < 1e-4, "{m}x{k}x{n} {a_stored:?} {b_stored:?}: {o} vs {}", w + 1.0);
                }
                matmul(&mut out, false, &a_in, a_stored, &b_in, b_stored, m, k, n);
                assert!(out.iter().zip(&want).all(|(o, w)| (o - w).abs() < 1e-4));
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_argmax_takes_the_first_tie() {
        let mut rows = vec![1.0, 3.0, 2.0, 1000.0, 1000.0, -5.0];
        softmax_rows(&mut rows, 3);
        assert!((rows[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((rows[3] - 0.5).abs() < 1e-6);
        assert_eq!(argmax_rows(&rows, 3), vec![1, 0]);
    }
}
