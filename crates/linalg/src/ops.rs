//! Element-wise and reduction helpers shared across crates: norms, column normalisation,
//! thresholding kernels. Large inputs run in parallel with rayon in fixed-size chunks, so results
//! are bit-identical whatever the number of threads.

use crate::error::{LinalgError, Result};
use crate::real::Real;
use nalgebra::DMatrix;
use rayon::prelude::*;

/// Element count above which the kernels here go parallel.
pub const PAR_MIN: usize = 1 << 15;
/// Fixed chunk length of parallel reductions (independent of the thread count).
const CHUNK: usize = 1 << 13;

fn reduce<T: Real>(x: &[T], f: impl Fn(&[T]) -> T + Sync + Send) -> Vec<T> {
    if x.len() >= PAR_MIN { x.par_chunks(CHUNK).map(f).collect() } else { x.chunks(CHUNK).map(f).collect() }
}

/// Dot product `Σ xᵢyᵢ`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the lengths differ.
pub fn dot<T: Real>(x: &[T], y: &[T]) -> Result<T> {
    if x.len() != y.len() {
        return Err(crate::error::mismatch("dot", format!("lengths {} and {}", x.len(), y.len())));
    }
    Ok(dot_unchecked(x, y))
}

/// Dot product of equal-length slices (the shorter length is used if they differ).
#[inline]
pub fn dot_unchecked<T: Real>(x: &[T], y: &[T]) -> T {
    // Eight independent accumulators let the compiler vectorise without reassociation flags.
    let n = x.len().min(y.len());
    let mut acc = [T::zero(); 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let b = c * 8;
        for l in 0..8 {
            acc[l] += x[b + l] * y[b + l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in chunks * 8..n {
        s += x[i] * y[i];
    }
    s
}

/// `y ← a·x + y`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the lengths differ.
pub fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) -> Result<()> {
    if x.len() != y.len() {
        return Err(crate::error::mismatch("axpy", format!("lengths {} and {}", x.len(), y.len())));
    }
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
    Ok(())
}

/// The sum of `v` in 16 interleaved partial sums (element `i` goes to sum `i mod 16`, the tail
/// after the last whole group of 16 is summed in order and then the 16 sums in order): the adds
/// are independent, so they vectorise and do not wait on each other, unlike a left-to-right fold,
/// and the order is fixed, so the result does not depend on threads or the CPU.
///
/// # Example
/// ```
/// let v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
/// assert_eq!(latent_linalg::ops::sum_lanes(&v), 5050.0);
/// ```
pub fn sum_lanes<T: Real>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a += b;
        }
    }
    let mut s = rest.iter().copied().fold(T::zero(), |a, b| a + b);
    for a in acc {
        s += a;
    }
    s
}

/// Squared Euclidean norm.
pub fn norm2_sq<T: Real>(x: &[T]) -> T {
    reduce(x, |c| dot_unchecked(c, c)).into_iter().fold(T::zero(), |a, b| a + b)
}

/// Euclidean norm.
pub fn norm2<T: Real>(x: &[T]) -> T {
    norm2_sq(x).sqrt()
}

/// ℓ1 norm `Σ|xᵢ|`.
pub fn norm1<T: Real>(x: &[T]) -> T {
    reduce(x, |c| c.iter().fold(T::zero(), |a, &v| a + v.abs())).into_iter().fold(T::zero(), |a, b| a + b)
}

/// ℓ∞ norm `max|xᵢ|` (0 for an empty slice).
pub fn norm_inf<T: Real>(x: &[T]) -> T {
    x.iter().fold(T::zero(), |a, &v| a.max(v.abs()))
}

/// Number of nonzero entries (ℓ0 "norm").
pub fn count_nonzero<T: Real>(x: &[T]) -> usize {
    x.iter().filter(|v| **v != T::zero()).count()
}

/// Euclidean norm of every column.
pub fn column_norms<T: Real>(m: &DMatrix<T>) -> Vec<T> {
    let r = m.nrows();
    if r == 0 {
        return vec![T::zero(); m.ncols()];
    }
    m.as_slice().chunks(r).map(|c| dot_unchecked(c, c).sqrt()).collect()
}

/// Scale every column to unit Euclidean norm in place and return the former norms. Columns whose
/// norm is below `tiny` are left unchanged (their norm is still returned), so a caller can resample
/// dead atoms.
///
/// # Errors
/// [`LinalgError::NonFinite`] when the matrix holds NaN or infinity.
pub fn normalize_columns<T: Real>(m: &mut DMatrix<T>, tiny: T) -> Result<Vec<T>> {
    crate::product::check_finite("normalize_columns", "matrix", m.as_slice())?;
    let r = m.nrows();
    if r == 0 {
        return Ok(vec![T::zero(); m.ncols()]);
    }
    Ok(m.as_mut_slice()
        .chunks_mut(r)
        .map(|c| {
            let n = dot_unchecked(c, c).sqrt();
            if n > tiny {
                let inv = T::one() / n;
                c.iter_mut().for_each(|v| *v *= inv);
            }
            n
        })
        .collect())
}

/// Soft threshold `xᵢ ← sign(xᵢ)·max(|xᵢ| − t, 0)` in place (the ℓ1 proximal map).
///
/// # Errors
/// [`LinalgError::InvalidParameter`] when `t` is negative or not finite.
pub fn soft_threshold<T: Real>(x: &mut [T], t: T) -> Result<()> {
    check_threshold("soft_threshold", t)?;
    apply(x, |v| soft(v, t));
    Ok(())
}

/// Non-negative soft threshold `xᵢ ← max(xᵢ − t, 0)` in place.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] when `t` is negative or not finite.
pub fn soft_threshold_nonneg<T: Real>(x: &mut [T], t: T) -> Result<()> {
    check_threshold("soft_threshold_nonneg", t)?;
    apply(x, |v| (v - t).max(T::zero()));
    Ok(())
}

/// Hard threshold `xᵢ ← xᵢ·[|xᵢ| > t]` in place (the ℓ0 proximal map with `t = √(2λ)`).
///
/// # Errors
/// [`LinalgError::InvalidParameter`] when `t` is negative or not finite.
pub fn hard_threshold<T: Real>(x: &mut [T], t: T) -> Result<()> {
    check_threshold("hard_threshold", t)?;
    apply(x, |v| if v.abs() > t { v } else { T::zero() });
    Ok(())
}

/// Scalar soft threshold.
#[inline(always)]
pub fn soft<T: Real>(v: T, t: T) -> T {
    if v > t {
        v - t
    } else if v < -t {
        v + t
    } else {
        T::zero()
    }
}

fn check_threshold<T: Real>(op: &'static str, t: T) -> Result<()> {
    if t < T::zero() || !t.finite() {
        return Err(LinalgError::InvalidParameter {
            op,
            name: "threshold",
            value: format!("{t}"),
            reason: "must be finite and >= 0",
        });
    }
    Ok(())
}

fn apply<T: Real>(x: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    if x.len() >= PAR_MIN {
        x.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
    } else {
        x.iter_mut().for_each(|v| *v = f(*v));
    }
}
