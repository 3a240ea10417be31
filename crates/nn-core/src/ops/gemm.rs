//! A bounds-checked matrix product on strided slices, over the `gemm` crate (the kernel candle's own CPU
//! matmul uses, with run-time AVX2/AVX-512 dispatch).
//!
//! `dst ← (accumulate ? dst : 0) + lhs · rhs` for `f32` and `f64`.

use candle_core::WithDType;
use gemm::Parallelism;

/// A strided view of an `rows × cols` matrix inside a slice: element (i, j) is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major contiguous `rows × cols` matrix.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (a view, no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// Largest index a strided `rows × cols` view touches, plus one (0 for an empty view).
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// `dst (row-major m × n) ← (accumulate ? dst : 0) + lhs (m × k) · rhs (k × n)`, on `threads` threads of
/// the global rayon pool (1: the calling thread only). Only `f32` and `f64` are supported.
///
/// Panics if a view reaches outside its slice or the shapes disagree (a bug in the caller, never input).
pub(crate) fn matmul<T: WithDType>(
    dst: &mut [T],
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(
        matches!(T::DTYPE, candle_core::DType::F32 | candle_core::DType::F64),
        "matmul: only f32 and f64"
    );
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        extent(m, k, lhs.rs, lhs.cs) <= lhs.data.len(),
        "matmul: lhs view out of bounds"
    );
    assert!(
        extent(k, n, rhs.rs, rhs.cs) <= rhs.data.len(),
        "matmul: rhs view out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(T::zero());
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every index the kernel reads or writes lies inside the slices (checked above), `dst` is
    // borrowed mutably and so aliases neither input, and T is f32 or f64, which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_with_transposes_and_accumulation() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![0.0; m * n];
        matmul(
            &mut c,
            Mat::row_major(&a, m, k),
            Mat::row_major(&b, k, n),
            false,
            1,
        );
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
        // (bᵀ)ᵀ given as the transpose of a stored n × k matrix; accumulate adds a second product.
        let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        matmul(
            &mut c,
            Mat::row_major(&a, m, k),
            Mat::row_major(&bt, n, k).t(),
            true,
            2,
        );
        for (x, y) in c.iter().zip(&want) {
            assert!((x - 2.0 * y).abs() < 1e-12);
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn views_outside_the_slice_panic() {
        let a = vec![0f32; 5];
        let mut c = vec![0f32; 4];
        matmul(
            &mut c,
            Mat::row_major(&a, 2, 3),
            Mat::row_major(&a, 3, 2),
            false,
            1,
        );
    }
}
